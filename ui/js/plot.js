// SPDX-License-Identifier: Apache-2.0
// A small SVG line plot of the last hour: one or two series, a scale on
// the left, no library.
const NS = 'http://www.w3.org/2000/svg';
const W = 320, H = 120, PAD_L = 52, PAD_B = 16;

function svg(tag, attrs) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// series: [{label, points: [{t, v}], cls}]; fmt: value -> text
export function plot(title, series, fmt) {
  const now = Date.now(), t0 = now - 3600 * 1000;
  let max = 0;
  for (const s of series) for (const p of s.points) if (p.v !== null && p.v > max) max = p.v;
  if (max === 0) max = 1;
  const x = (t) => PAD_L + ((t - t0) / (now - t0)) * (W - PAD_L - 4);
  const y = (v) => 4 + (1 - v / max) * (H - PAD_B - 8);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'plot', role: 'img' });
  const desc = series.map((s) => {
    const lastP = s.points.filter((p) => p.v !== null).pop();
    return `${s.label}: ${lastP ? fmt(lastP.v) : 'no data'}`;
  }).join(', ');
  root.setAttribute('aria-label', `${title}, last hour. Now ${desc}`);
  root.append(svg('line', { x1: PAD_L, x2: W - 4, y1: y(0), y2: y(0), class: 'axis' }));
  root.append(svg('line', { x1: PAD_L, x2: W - 4, y1: y(max), y2: y(max), class: 'grid' }));
  const top = svg('text', { x: PAD_L - 4, y: y(max) + 4, class: 'tick', 'text-anchor': 'end' });
  top.textContent = fmt(max);
  const zero = svg('text', { x: PAD_L - 4, y: y(0), class: 'tick', 'text-anchor': 'end' });
  zero.textContent = '0';
  const ago = svg('text', { x: PAD_L, y: H - 2, class: 'tick' });
  ago.textContent = '-60 min';
  const nowT = svg('text', { x: W - 4, y: H - 2, class: 'tick', 'text-anchor': 'end' });
  nowT.textContent = 'now';
  root.append(top, zero, ago, nowT);
  for (const s of series) {
    let d = '';
    let pen = false;
    for (const p of s.points) {
      if (p.v === null || p.t < t0) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`;
      pen = true;
    }
    if (d) root.append(svg('path', { d, class: `line ${s.cls || ''}` }));
  }
  return root;
}
