import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatJsonPath, JsonSyntaxError, parseJsonLocated } from '../../lib/core/json-lines.ts';
import { frameOfMs, LabelError, type LabelProblem, pairClips, parseLabelMap, parseLabels } from '../../lib/protocol/labels.ts';

/** The problems a LabelError carries, as `file:line: path: message` lines. */
function problemsOf(fn: () => unknown): LabelProblem[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof LabelError, `expected a LabelError, got ${String(error)}`);
    assert.equal(error.kind, 'invalid-input');
    return [...error.problems];
  }
  assert.fail('expected a LabelError');
}

const MAP = parseLabelMap('{"GOAL": "goal", "PASS": "pass", "OUT": "ball_out_of_play", "DRIVE": null}', 'map.json');

describe('json-lines', () => {
  it('formats JSON paths', () => {
    assert.equal(formatJsonPath([]), '(root)');
    assert.equal(formatJsonPath([1, 'frame']), '[1].frame');
    assert.equal(formatJsonPath(['annotations', 3, 'label']), 'annotations[3].label');
    assert.equal(formatJsonPath(['Ball out of play']), '"Ball out of play"');
  });

  it('finds the line of members and elements, past strings holding quotes, brackets and newlines', () => {
    const text = '{\n  "a\\"]": "x\\n}",\n  "list": [\n    1,\n    {"k":\n      [true, null]}\n  ]\n}';
    const json = parseJsonLocated(text, 't.json');
    assert.deepEqual(json.value, { 'a"]': 'x\n}', list: [1, { k: [true, null] }] });
    assert.equal(json.lineOf([]), 1);
    assert.equal(json.lineOf(['a"]']), 2);
    assert.equal(json.lineOf(['list']), 3);
    assert.equal(json.lineOf(['list', 0]), 4);
    assert.equal(json.lineOf(['list', 1, 'k']), 5, 'a member is located at its key');
    assert.equal(json.lineOf(['list', 1, 'k', 1]), 6);
    assert.equal(json.lineOf(['missing']), undefined);
  });

  it('names the file on invalid JSON', () => {
    assert.throws(
      () => parseJsonLocated('[1,', 'bad.json'),
      (error: unknown) => {
        assert.ok(error instanceof JsonSyntaxError);
        assert.match(error.message, /^bad\.json is not valid JSON: /);
        return true;
      },
    );
  });
});

describe("Score's shape", () => {
  it('reads frames and actions in file order', () => {
    const labels = parseLabels('[{"frame": 75, "action": "goal"}, {"frame": 0, "action": "pass", "note": "kept"}]', 'a.json');
    assert.equal(labels.format, 'score');
    assert.deepEqual(labels.events, [
      { frame: 75, action: 'goal' },
      { frame: 0, action: 'pass' },
    ]);
    assert.equal(labels.ignored, 0);
  });

  it('an empty list is a clip with no events', () => {
    assert.deepEqual(parseLabels('[]', 'a.json').events, []);
  });

  it('names every bad entry with file, line and JSON path', () => {
    const text = [
      '[',
      '  {"frame": 75, "action": "goal"},',
      '  {"frame": 7.5, "action": "Goal"},',
      '  {"frame": -3, "action": "gol"},',
      '  {"action": "pass"},',
      '  "goal@75"',
      ']',
    ].join('\n');
    const lines = problemsOf(() => parseLabels(text, 'clips/a.json')).map((p) => `${p.file}:${p.line}: ${p.path}`);
    assert.deepEqual(lines, [
      'clips/a.json:3: [1].frame',
      'clips/a.json:3: [1].action',
      'clips/a.json:4: [2].frame',
      'clips/a.json:4: [2].action',
      'clips/a.json:5: [3].frame', // missing: the line of its entry
      'clips/a.json:6: [4]',
    ]);
    const messages = problemsOf(() => parseLabels(text, 'clips/a.json')).map((p) => p.message);
    assert.match(messages[0], /^7\.5 is not an integer/);
    assert.match(messages[1], /^"Goal" is not a Score action \(did you mean "goal"\?\)/);
    assert.match(messages[2], /^-3 is negative/);
    assert.match(messages[3], /^"gol" is not a Score action: expected one of pass, /);
    assert.match(messages[4], /^missing is required/);
  });

  it('the error message lists each problem as file:line: path: message', () => {
    assert.throws(
      () => parseLabels('[\n{"frame": 1, "action": "goal"},\n{"frame": 2, "action": "nope"}\n]', 'x.json'),
      (error: Error) => /^bad labels: x\.json:3: \[1\]\.action: "nope" is not a Score action/.test(error.message),
    );
  });

  it('a document in neither format is refused at the root', () => {
    const [problem] = problemsOf(() => parseLabels('{"events": []}', 'a.json'));
    assert.equal(problem.path, '(root)');
    assert.equal(problem.line, 1);
    assert.match(problem.message, /neither label format.*an object with "events"/);
  });

  it('invalid JSON is a label problem naming the file', () => {
    const [problem] = problemsOf(() => parseLabels('[{"frame": 1,}]', 'a.json'));
    assert.equal(problem.file, 'a.json');
    assert.match(problem.message, /^is not valid JSON: /);
  });
});

describe("SoccerNet's shape", () => {
  const annotations = (items: object[]) => JSON.stringify({ UrlLocal: 'x', annotations: items }, null, 1);

  it('position (ms) -> round(ms * 25 / 1000); null-mapped labels are counted, not kept', () => {
    const labels = parseLabels(
      annotations([
        { gameTime: '1 - 00:03', label: 'GOAL', position: '3000', team: 'home', visibility: 'visible' },
        { gameTime: '1 - 00:01', label: 'PASS', position: '1234', visibility: 'not shown' },
        { gameTime: '1 - 00:01', label: 'DRIVE', position: '1500' },
        { gameTime: '1 - 00:05', label: 'OUT', position: 5020 },
      ]),
      'a.Labels-ball.json',
      MAP,
    );
    assert.equal(labels.format, 'soccernet');
    // 3000 ms -> 75; 1234 ms -> 30.85 -> 31; 5020 ms -> 125.5 -> 126 (Math.round rounds halves up)
    assert.deepEqual(labels.events, [
      { frame: 75, action: 'goal' },
      { frame: 31, action: 'pass' },
      { frame: 126, action: 'ball_out_of_play' },
    ]);
    assert.equal(labels.ignored, 1);
    assert.equal(frameOfMs(40), 1);
    assert.equal(frameOfMs(19), 0);
  });

  it('without a position, gameTime gives the time at second precision', () => {
    const labels = parseLabels(annotations([{ gameTime: '1 - 01:02', label: 'GOAL' }]), 'a.json', MAP);
    assert.deepEqual(labels.events, [{ frame: 62 * 25, action: 'goal' }]);
  });

  it('needs a label map', () => {
    const [problem] = problemsOf(() => parseLabels(annotations([{ gameTime: '1 - 00:03', label: 'GOAL', position: '3000' }]), 'a.json'));
    assert.equal(problem.path, '(root)');
    assert.match(problem.message, /need a label map: pass --label-map FILE/);
  });

  it('names unmapped labels, bad positions and game times, and mixed halves with their lines', () => {
    const text = annotations([
      { gameTime: '1 - 00:03', label: 'GOAL', position: '3000' },
      { gameTime: '1 - 00:04', label: 'HEADER', position: '4000' },
      { gameTime: '1 - 00:04', label: 'goal', position: '4000' },
      { gameTime: '1 - 00:05', label: 'PASS', position: '-40' },
      { gameTime: '1 - 00:05', label: 'PASS', position: '12.5' },
      { gameTime: '2 - 00:06', label: 'PASS', position: '6000' },
      { gameTime: 'first half', label: 'PASS', position: '6000' },
      { label: 'PASS' },
      { gameTime: '1 - 00:07', position: '7000' },
    ]);
    // Expected lines found by reading the text, not by the locator under test: JSON.stringify(..., null, 1)
    // puts each annotation's "{" on a line of its own ("  {") and each field on the following lines.
    const lines = text.split('\n');
    const opens = lines.flatMap((line, i) => (line === '  {' ? [i] : []));
    const lineOf = (index: number, field?: string) => {
      if (field === undefined) return opens[index] + 1;
      const at = lines.findIndex((line, i) => i > opens[index] && line.startsWith(`   "${field}":`));
      return at + 1;
    };
    const problems = problemsOf(() => parseLabels(text, 'sn/a.Labels-v2.json', MAP));
    assert.deepEqual(
      problems.map((p) => [p.path, p.line]),
      [
        ['annotations[1].label', lineOf(1, 'label')],
        ['annotations[2].label', lineOf(2, 'label')],
        ['annotations[3].position', lineOf(3, 'position')],
        ['annotations[4].position', lineOf(4, 'position')],
        ['annotations[5].gameTime', lineOf(5, 'gameTime')],
        ['annotations[6].gameTime', lineOf(6, 'gameTime')],
        ['annotations[7]', lineOf(7)],
        ['annotations[8].label', lineOf(8)], // a missing field: the line of its annotation
      ],
    );
    // Line 1 "{", 2 UrlLocal, 3 "annotations": [, 4-8 annotation 0, 9 "{" of annotation 1, 10 gameTime, 11 label.
    assert.equal(lineOf(1, 'label'), 11);
    assert.equal(problems[0].file, 'sn/a.Labels-v2.json');
    assert.match(problems[0].message, /^"HEADER" is not in the label map map\.json: add "HEADER": "<Score action>", or null to ignore it/);
    assert.match(problems[1].message, /\(it has "GOAL": labels are case-sensitive\)/);
    assert.match(problems[2].message, /^"-40" is negative/);
    assert.match(problems[3].message, /^"12\.5" is not a whole number of milliseconds/);
    assert.match(problems[4].message, /^half 2 differs from half 1 of annotations\[0\]: a clip is one video/);
    assert.match(problems[5].message, /^"first half" is not a game time/);
    assert.match(problems[6].message, /neither "position" \(milliseconds\) nor "gameTime"/);
    assert.match(problems[7].message, /^missing is not a label/);
  });

  it('annotations must be a list', () => {
    const [problem] = problemsOf(() => parseLabels('{"annotations": {}}', 'a.json', MAP));
    assert.equal(problem.path, 'annotations');
  });
});

describe('label map', () => {
  it('maps labels to actions or null, skipping "_" comments', () => {
    const map = parseLabelMap('{"_note": "SoccerNet 2024", "GOAL": "goal", "DRIVE": null}', 'm.json');
    assert.deepEqual(
      [...map.entries],
      [
        ['GOAL', 'goal'],
        ['DRIVE', null],
      ],
    );
  });

  it('names a bad entry with its line', () => {
    const problems = problemsOf(() => parseLabelMap('{\n "GOAL": "goal",\n "SHOT": "Shot",\n "PASS": 3\n}', 'm.json'));
    assert.deepEqual(
      problems.map((p) => `${p.line}: ${p.path}`),
      ['3: SHOT', '4: PASS'],
    );
    assert.match(problems[0].message, /^"Shot" is not a Score action \(did you mean "shot"\?\)/);
  });

  it('must be an object', () => {
    const [problem] = problemsOf(() => parseLabelMap('["goal"]', 'm.json'));
    assert.equal(problem.path, '(root)');
  });
});

describe('pairClips', () => {
  it('pairs each clip with its one label file, sorted by name, leaving other files alone', () => {
    const { clips, problems } = pairClips(
      ['b.mp4', 'b.Labels-ball.json', 'notes.txt', 'a.json', 'a.mp4', 'map.json', 'c.mp4', 'c.Labels-v2.json'],
      ['map.json'],
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(clips, [
      { name: 'a', video: 'a.mp4', labels: 'a.json' },
      { name: 'b', video: 'b.mp4', labels: 'b.Labels-ball.json' },
      { name: 'c', video: 'c.mp4', labels: 'c.Labels-v2.json' },
    ]);
  });

  it('a clip without labels, a clip with two label files and a label file without a clip are problems', () => {
    const { clips, problems } = pairClips(['a.mp4', 'b.mp4', 'b.json', 'b.Labels-v2.json', 'c.json', 'd.mp4', 'd.json']);
    assert.deepEqual(clips, [{ name: 'd', video: 'd.mp4', labels: 'd.json' }]);
    assert.deepEqual(
      problems.map((p) => p.file),
      ['a.mp4', 'b.mp4', 'c.json'],
    );
    assert.match(problems[0].message, /^has no labels: expected a\.json/);
    assert.match(problems[1].message, /^has 2 label files \(b\.json, b\.Labels-v2\.json\): keep exactly one/);
    assert.match(problems[2].message, /^belongs to no clip/);
  });
});
