import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeHtml, type ReportData, renderReport } from '../../lib/core/report-html.ts';

const DATA: ReportData = {
  title: 'eval',
  subtitle: 'model <m> & co',
  meanScore: 0.25,
  meanDecay: 0.75,
  processingTimeS: 3.5,
  clips: [
    { name: 'half', score: 0.5, processingTimeS: 1.5, matched: 1, missed: 1, falsePositives: 0, meanDecay: 0.75 },
    {
      name: '<script>x</script>',
      score: 0,
      processingTimeS: 2,
      matched: 0,
      missed: 0,
      falsePositives: 0,
      meanDecay: null,
      error: 'cannot reach',
    },
  ],
  actions: [
    { action: 'goal', truth: 2, predicted: 4, matched: 1, missed: 1, falsePositives: 3, meanDecay: 0.75, share: -0.1 },
    { action: 'pass', truth: 0, predicted: 0, matched: 0, missed: 0, falsePositives: 0, meanDecay: null, share: 0 },
  ],
};

describe('renderReport', () => {
  it('escapes every text it is given', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
    const html = renderReport(DATA);
    assert.doesNotMatch(html, /<script>/);
    assert.match(html, /&#60;script&#62;x&#60;\/script&#62;/);
    assert.match(html, /model &#60;m&#62; &#38; co/);
  });

  it('draws score bars on a 0..1 axis of 420 px, and a failed clip in the error colour', () => {
    const chart = /<svg id="score-per-clip"[\s\S]*?<\/svg>/.exec(renderReport(DATA))?.[0] ?? '';
    assert.match(chart, /<rect x="210" y="13" width="210\.0" height="16" fill="#2f6db5"\/>/, 'score 0.5: half of 420 px');
    assert.match(chart, /<rect x="210" y="35" width="0\.0" height="16" fill="#c0392b"\/>/);
    assert.match(chart, /<title>half: score 0\.5000<\/title>/);
  });

  it('scales the per-action bars to the largest count', () => {
    const chart = /<svg id="per-action"[\s\S]*?<\/svg>/.exec(renderReport(DATA))?.[0] ?? '';
    // Largest count 3 (goal false positives) -> 420 px; goal matched 1 -> 140 px.
    assert.match(chart, /<title>goal false positives: 3<\/title><rect x="210" y="62" width="420\.0"/);
    assert.match(chart, /<title>goal matched: 1<\/title><rect x="210" y="30" width="140\.0"/);
    assert.match(chart, /<title>pass matched: 0<\/title><rect x="210" y="90" width="0\.0"/);
  });

  it('tables the numbers; the tuning section appears only with a tuning', () => {
    const html = renderReport(DATA);
    assert.match(
      html,
      /<tr><td>goal<\/td><td class="num">2<\/td><td class="num">4<\/td><td class="num">1<\/td><td class="num">1<\/td><td class="num">3<\/td><td class="num">0\.750<\/td><td class="num">-0\.100<\/td><\/tr>/,
    );
    assert.doesNotMatch(html, /<h2>Tuning<\/h2>/);
    const tuned = renderReport({
      ...DATA,
      tuning: {
        folds: 2,
        before: 0.25,
        inSample: 0.5,
        outOfSample: 0.4,
        actions: [
          {
            action: 'goal',
            before: { threshold: 0.522, nmsWindowS: 3 },
            after: { threshold: 0.35, nmsWindowS: 1.5 },
            shareBefore: 0,
            shareInSample: 0.2,
            shareOutOfSample: 0.1,
          },
        ],
      },
    });
    assert.match(tuned, /<h2>Tuning<\/h2>/);
    assert.match(tuned, /model values 0\.2500, tuned in-sample 0\.5000, out-of-sample 0\.4000 \(2-fold cross-validation\)/);
    assert.match(tuned, /<td class="num">0\.522 → 0\.350<\/td><td class="num">3 s → 1\.5 s<\/td>/);
  });
});
