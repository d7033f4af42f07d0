/**
 * lib/chain/diagnose.ts without a chain: a healthy miner's facts give no finding, and each of the eleven rules
 * fires on the one fact that breaks it (asserted by the finding's rule, not its words). The shared netuid and
 * registration rules that commit and axon use are checked here too.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildPayload, payloadJson } from '../../lib/chain/commitment.ts';
import {
  diagnose,
  type FindingRule,
  netuidMismatch,
  notRegisteredError,
  registerCommand,
  type StatusFacts,
} from '../../lib/chain/diagnose.ts';

const HOTKEY = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const OTHER = '5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y';
const ELEMENT = 'manako/DetectFootballEvent';
const DIGEST = `sha256:${'a'.repeat(64)}`;

function payload(overrides: Record<string, unknown> = {}): string {
  const base = JSON.parse(
    payloadJson(buildPayload({ imageRepo: 'user/repo', imageTag: 'v1', imageDigest: DIGEST, elementId: ELEMENT, hotkey: HOTKEY })),
  );
  return JSON.stringify({ ...base, ...overrides });
}

/** A miner with nothing to fix. */
const healthy: StatusFacts = {
  netuid: 44,
  network: 'finney',
  elementId: ELEMENT,
  wallet: { coldkey: 'cold', hotkey: 'hot' },
  hotkey: HOTKEY,
  registered: true,
  axon: { ip: '203.0.113.7', port: 8000 },
  configuredAxon: { ip: '203.0.113.7', port: 8000 },
  pending: undefined,
  latest: { text: payload(), block: 120 },
  rehearsal: { digest: DIGEST, result: 'PASS' },
};

const cases: Array<[string, Partial<StatusFacts>, FindingRule[]]> = [
  ['a netuid other than 44', { netuid: 1 }, ['netuid']],
  ['a network other than finney', { network: 'local' }, ['network']],
  [
    'an unregistered hotkey (no axon or commitment can follow)',
    { registered: false, axon: undefined, latest: undefined },
    ['not-registered'],
  ],
  ['no axon on chain', { axon: undefined }, ['no-axon']],
  ['an axon at another port than configured', { axon: { ip: '203.0.113.7', port: 9000 } }, ['axon-mismatch']],
  ['stake that cannot be read', { stakeError: 'metagraph unavailable' }, ['stake-unreadable']],
  ['a revealed payload the validator filters out', { latest: { text: payload({ track: 'public' }), block: 120 } }, ['filter']],
  ['a revealed payload of another hotkey', { latest: { text: payload({ hotkey: OTHER }), block: 120 } }, ['revealed-hotkey']],
  ['nothing revealed and nothing pending', { latest: undefined }, ['no-commitment']],
  ['a pending commitment and nothing revealed', { latest: undefined, pending: { revealRounds: [123n] } }, ['pending']],
  [
    'a failed rehearsal of the committed digest',
    { rehearsal: { digest: DIGEST, result: 'FAIL', cause: 'scores differ' } },
    ['rehearsal-failed'],
  ],
];

test('a healthy miner has no findings', () => {
  assert.deepEqual(diagnose(healthy), []);
});

for (const [name, change, rules] of cases) {
  test(`diagnose: ${name} -> ${rules.join(', ')}`, () => {
    assert.deepEqual(
      diagnose({ ...healthy, ...change }).map((f) => f.rule),
      rules,
    );
  });
}

test('the eleven rules are all covered by the table', () => {
  assert.equal(new Set(cases.flatMap(([, , rules]) => rules)).size, 11);
});

test('findings keep the order a miner fixes them in, and each names its fix', () => {
  const all = diagnose({ ...healthy, netuid: 1, network: 'local', registered: false, axon: undefined, latest: undefined, stakeError: 'x' });
  assert.deepEqual(
    all.map((f) => f.rule),
    ['netuid', 'network', 'not-registered', 'stake-unreadable'],
  );
  assert.equal(all[2]?.fix, registerCommand(1, healthy.wallet));
  assert.ok(all.every((f) => f.fix.length > 0));
});

test('a payload failing several filter checks gives one filter finding per check', () => {
  const findings = diagnose({ ...healthy, latest: { text: payload({ track: 'public', image_tag: '', element_id: 'other' }), block: 1 } });
  assert.deepEqual(
    findings.map((f) => f.rule),
    ['filter', 'filter', 'filter'],
  );
});

test('the shared rules: netuid 44 is silent, others are named; the registration error names the btcli command', () => {
  assert.equal(netuidMismatch(44), undefined);
  assert.match(netuidMismatch(1) ?? '', /^netuid is 1, not 44 /);
  const error = notRegisteredError(HOTKEY, 44, { coldkey: 'cold', hotkey: 'hot' });
  assert.equal(error.message, `hotkey ${HOTKEY} is not registered on netuid 44`);
  assert.match(error.hint ?? '', /btcli subnet register --netuid 44 --wallet\.name cold --wallet\.hotkey hot/);
});
