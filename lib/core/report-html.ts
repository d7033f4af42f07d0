/**
 * The evaluation report (tasks/eval.ts --report DIR) as one self-contained index.html: inline CSS and inline
 * SVG bar charts (score per clip; matched / missed / false positives per action), tables with the numbers, and
 * the tuning's before/after when there is one. No script, no external asset. Pure: data in, HTML out.
 */

export interface ReportClip {
  name: string;
  score: number;
  processingTimeS: number;
  matched: number;
  missed: number;
  falsePositives: number;
  meanDecay: number | null;
  /** Set when the clip could not be evaluated (it scores 0, as with the validator). */
  error?: string;
}

export interface ReportAction {
  action: string;
  truth: number;
  predicted: number;
  matched: number;
  missed: number;
  falsePositives: number;
  meanDecay: number | null;
  share: number;
}

export interface ReportTuningAction {
  action: string;
  before: { threshold: number; nmsWindowS: number };
  after: { threshold: number; nmsWindowS: number };
  shareBefore: number;
  shareInSample: number;
  shareOutOfSample: number | null;
}

export interface ReportData {
  title: string;
  /** One line under the title: model, source, labels. */
  subtitle: string;
  meanScore: number;
  meanDecay: number | null;
  processingTimeS: number;
  clips: ReportClip[];
  actions: ReportAction[];
  tuning?: {
    folds: number;
    before: number;
    inSample: number;
    outOfSample: number | null;
    actions: ReportTuningAction[];
  };
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const COLOURS = { score: '#2f6db5', matched: '#2e8b57', missed: '#d98c1f', falsePositives: '#c0392b' } as const;
const LABEL_W = 210;
const BAR_W = 420;
const ROW_H = 22;

const fixed = (n: number, digits = 3) => n.toFixed(digits);
const decay = (d: number | null) => (d === null ? '–' : fixed(d));
const signed = (n: number) => (n >= 0 ? `+${fixed(n)}` : fixed(n));

function truncate(text: string, max = 30): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Horizontal bars, one row per clip: its score on a 0..1 axis. */
function scoreChart(clips: readonly ReportClip[]): string {
  const height = clips.length * ROW_H + 30;
  const width = LABEL_W + BAR_W + 70;
  const rows = clips.map((clip, i) => {
    const y = 10 + i * ROW_H;
    const w = Math.max(0, Math.min(1, clip.score)) * BAR_W;
    const label = escapeHtml(truncate(clip.name));
    return [
      `<g class="row"><title>${escapeHtml(clip.name)}: score ${fixed(clip.score, 4)}${clip.error ? ` (${escapeHtml(clip.error)})` : ''}</title>`,
      `<text x="${LABEL_W - 8}" y="${y + 15}" text-anchor="end">${label}</text>`,
      `<rect x="${LABEL_W}" y="${y + 3}" width="${w.toFixed(1)}" height="${ROW_H - 6}" fill="${clip.error ? COLOURS.falsePositives : COLOURS.score}"/>`,
      `<text x="${(LABEL_W + w + 6).toFixed(1)}" y="${y + 15}">${fixed(clip.score)}</text></g>`,
    ].join('');
  });
  const axisY = 10 + clips.length * ROW_H;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map(
    (t) =>
      `<line x1="${LABEL_W + t * BAR_W}" y1="8" x2="${LABEL_W + t * BAR_W}" y2="${axisY}" class="grid"/><text x="${LABEL_W + t * BAR_W}" y="${axisY + 14}" text-anchor="middle" class="tick">${t}</text>`,
  );
  return `<svg id="score-per-clip" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="Score per clip">${ticks.join('')}${rows.join('')}</svg>`;
}

/** Per action, three bars: matched, missed, false positives (counts summed over the clips). */
function actionChart(actions: readonly ReportAction[]): string {
  const series = [
    ['matched', 'matched'],
    ['missed', 'missed'],
    ['falsePositives', 'false positives'],
  ] as const;
  const max = Math.max(1, ...actions.flatMap((a) => [a.matched, a.missed, a.falsePositives]));
  const groupH = series.length * 16 + 12;
  const height = actions.length * groupH + 40;
  const width = LABEL_W + BAR_W + 70;
  const groups = actions.map((a, i) => {
    const y0 = 30 + i * groupH;
    const bars = series.map(([key, label], s) => {
      const value = a[key];
      const y = y0 + s * 16;
      const w = (value / max) * BAR_W;
      return `<g class="bar ${key}"><title>${escapeHtml(a.action)} ${label}: ${value}</title><rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="13" fill="${COLOURS[key]}"/><text x="${(LABEL_W + w + 6).toFixed(1)}" y="${y + 11}">${value}</text></g>`;
    });
    return `<g class="action" data-action="${escapeHtml(a.action)}"><text x="${LABEL_W - 8}" y="${y0 + 27}" text-anchor="end">${escapeHtml(a.action)}</text>${bars.join('')}</g>`;
  });
  const legend = series
    .map(
      ([key, label], s) =>
        `<rect x="${LABEL_W + s * 140}" y="6" width="12" height="12" fill="${COLOURS[key]}"/><text x="${LABEL_W + s * 140 + 18}" y="16">${label}</text>`,
    )
    .join('');
  return `<svg id="per-action" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="Matched, missed and false positives per action">${legend}${groups.join('')}</svg>`;
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const tr = rows.map(
    (r) => `<tr>${r.map((c, i) => (i === 0 ? `<td>${escapeHtml(c)}</td>` : `<td class="num">${escapeHtml(c)}</td>`)).join('')}</tr>`,
  );
  return `<table><thead><tr>${th}</tr></thead><tbody>${tr.join('')}</tbody></table>`;
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem}.sub{color:#666;margin-top:0}
.big{font-size:1.1rem}table{border-collapse:collapse;margin:.5rem 0}th,td{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}svg text{font:12px system-ui,sans-serif;fill:#222}
svg .tick{fill:#777}svg .grid{stroke:#e4e4e4}.err{color:#c0392b}`;

export function renderReport(data: ReportData): string {
  const clipRows = data.clips.map((c) => [
    c.name,
    fixed(c.score, 4),
    String(c.matched),
    String(c.missed),
    String(c.falsePositives),
    decay(c.meanDecay),
    `${fixed(c.processingTimeS, 2)} s`,
    c.error ?? '',
  ]);
  const actionRows = data.actions.map((a) => [
    a.action,
    String(a.truth),
    String(a.predicted),
    String(a.matched),
    String(a.missed),
    String(a.falsePositives),
    decay(a.meanDecay),
    signed(a.share),
  ]);
  const parts = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(data.title)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<h1>${escapeHtml(data.title)}</h1>`,
    `<p class="sub">${escapeHtml(data.subtitle)}</p>`,
    `<p class="big">Mean validator score <strong>${fixed(data.meanScore, 4)}</strong> over ${data.clips.length} clip${data.clips.length === 1 ? '' : 's'}; mean decay of matches ${decay(data.meanDecay)}; processing ${fixed(data.processingTimeS, 2)} s in all.</p>`,
    '<h2>Score per clip</h2>',
    scoreChart(data.clips),
    '<h2>Per action</h2>',
    actionChart(data.actions),
    table(['action', 'truth', 'predicted', 'matched', 'missed', 'false positives', 'mean decay', 'share of score'], actionRows),
    '<p class="sub">Share of score: (Σ weight·decay − weight·false positives) / the clip\'s ground-truth weight, mean over clips; the shares add up to the mean score before the validator clamps each clip to [0, 1].</p>',
    '<h2>Clips</h2>',
    table(['clip', 'score', 'matched', 'missed', 'false positives', 'mean decay', 'time', 'error'], clipRows),
  ];
  if (data.tuning) {
    const t = data.tuning;
    parts.push(
      '<h2>Tuning</h2>',
      `<p>Mean score: model values ${fixed(t.before, 4)}, tuned in-sample ${fixed(t.inSample, 4)}, out-of-sample ${t.outOfSample === null ? '– (needs 2 folds)' : fixed(t.outOfSample, 4)} (${t.folds}-fold cross-validation).</p>`,
      table(
        ['action', 'threshold', 'NMS window', 'share before', 'share in-sample', 'share out-of-sample'],
        t.actions.map((a) => [
          a.action,
          `${fixed(a.before.threshold)} → ${fixed(a.after.threshold)}`,
          `${a.before.nmsWindowS} s → ${a.after.nmsWindowS} s`,
          signed(a.shareBefore),
          signed(a.shareInSample),
          a.shareOutOfSample === null ? '–' : signed(a.shareOutOfSample),
        ]),
      ),
    );
  }
  parts.push('</body></html>', '');
  return parts.join('\n');
}
