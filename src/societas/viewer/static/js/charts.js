// Plain-canvas charts for the town panel: the news diffusion chart and the conversation network.

import { agentColor, clamp } from './util.js';

export const SERIES_COLORS = ['#d1495b', '#2e86ab', '#edae49', '#00798c', '#8e6c8a', '#66a182', '#e4572e', '#30638e'];

/** Size a canvas to its CSS box at the device's pixel ratio; returns the 2D context and size. */
export function fitCanvas(canvas, height) {
  const width = Math.max(120, canvas.parentElement.clientWidth);
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.style.height = `${height}px`;
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { g, width, height };
}

/**
 * Share of agents who had heard each news item, as step lines over the run, with a cursor at
 * the viewed step. `data` is /api/town/diffusion; `lastStep` fixes the x axis.
 */
export function drawDiffusion(canvas, data, { lastStep, cursor, label }) {
  const { g, width, height } = fitCanvas(canvas, 170);
  const pad = { left: 34, right: 10, top: 10, bottom: 22 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  const population = Math.max(1, data.population);
  const xOf = (step) => pad.left + (lastStep > 0 ? step / lastStep : 0) * w;
  const yOf = (count) => pad.top + h - (count / population) * h;
  g.clearRect(0, 0, width, height);
  g.font = '10px system-ui, sans-serif';
  g.fillStyle = '#7b8794';
  g.strokeStyle = '#e4e7eb';
  g.lineWidth = 1;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (const share of [0, 0.25, 0.5, 0.75, 1]) {
    const y = yOf(share * population);
    g.beginPath(); g.moveTo(pad.left, y); g.lineTo(pad.left + w, y); g.stroke();
    g.fillText(`${Math.round(share * 100)}%`, pad.left - 4, y);
  }
  g.textBaseline = 'top';
  for (const [k, align] of [[0, 'left'], [0.5, 'center'], [1, 'right']]) {
    const step = Math.round(k * lastStep);
    g.textAlign = align;
    g.fillText(label(step), xOf(step), pad.top + h + 5);
  }
  data.items.forEach((item, k) => {
    g.strokeStyle = SERIES_COLORS[k % SERIES_COLORS.length];
    g.lineWidth = 2;
    g.beginPath();
    let y = yOf(0);
    g.moveTo(xOf(item.points.length ? item.points[0][0] : 0), y);
    for (const [step, count] of item.points) {
      g.lineTo(xOf(step), y);
      y = yOf(count);
      g.lineTo(xOf(step), y);
    }
    g.lineTo(xOf(Math.min(lastStep, data.step)), y);
    g.stroke();
  });
  if (cursor !== null) {
    g.strokeStyle = 'rgba(31, 41, 51, 0.55)';
    g.setLineDash([3, 3]);
    g.beginPath(); g.moveTo(xOf(cursor), pad.top); g.lineTo(xOf(cursor), pad.top + h); g.stroke();
    g.setLineDash([]);
  }
}

/** A force-directed layout (deterministic: starts on a circle), positions in [0, 1]. */
export function layoutNetwork(names, edges) {
  const n = names.length;
  const index = new Map(names.map((name, i) => [name, i]));
  const pos = new Float64Array(n * 2);
  for (let i = 0; i < n; i += 1) {
    const angle = (2 * Math.PI * i) / Math.max(1, n);
    pos[i * 2] = Math.cos(angle) * 0.4;
    pos[i * 2 + 1] = Math.sin(angle) * 0.4;
  }
  const links = edges.map(([a, b, weight]) => [index.get(a), index.get(b), Math.log2(1 + weight)])
    .filter(([a, b]) => a !== undefined && b !== undefined);
  const k = 0.6 / Math.sqrt(Math.max(1, n));
  const iterations = n > 250 ? 80 : 220;
  const force = new Float64Array(n * 2);
  for (let it = 0; it < iterations; it += 1) {
    force.fill(0);
    for (let i = 0; i < n; i += 1) {
      for (let j = i + 1; j < n; j += 1) {
        const dx = pos[i * 2] - pos[j * 2];
        const dy = pos[i * 2 + 1] - pos[j * 2 + 1];
        const d2 = Math.max(1e-4, dx * dx + dy * dy);
        const f = (k * k) / d2;
        force[i * 2] += dx * f; force[i * 2 + 1] += dy * f;
        force[j * 2] -= dx * f; force[j * 2 + 1] -= dy * f;
      }
    }
    for (const [a, b, weight] of links) {
      const dx = pos[a * 2] - pos[b * 2];
      const dy = pos[a * 2 + 1] - pos[b * 2 + 1];
      // Attraction grows with the square of the distance (Fruchterman-Reingold).
      const f = (Math.sqrt(dx * dx + dy * dy) / k) * weight * 0.5;
      force[a * 2] -= dx * f; force[a * 2 + 1] -= dy * f;
      force[b * 2] += dx * f; force[b * 2 + 1] += dy * f;
    }
    const temperature = 0.05 * (1 - it / iterations) + 0.002;
    for (let i = 0; i < n; i += 1) {
      force[i * 2] -= pos[i * 2] * 0.8;
      force[i * 2 + 1] -= pos[i * 2 + 1] * 0.8;
      const fx = force[i * 2];
      const fy = force[i * 2 + 1];
      const len = Math.sqrt(fx * fx + fy * fy) + 1e-9;
      const move = Math.min(len, temperature);
      pos[i * 2] += (fx / len) * move;
      pos[i * 2 + 1] += (fy / len) * move;
    }
  }
  let minX = Infinity; let maxX = -Infinity; let minY = Infinity; let maxY = -Infinity;
  for (let i = 0; i < n; i += 1) {
    minX = Math.min(minX, pos[i * 2]); maxX = Math.max(maxX, pos[i * 2]);
    minY = Math.min(minY, pos[i * 2 + 1]); maxY = Math.max(maxY, pos[i * 2 + 1]);
  }
  const spanX = Math.max(1e-6, maxX - minX);
  const spanY = Math.max(1e-6, maxY - minY);
  const out = new Float32Array(n * 2);
  for (let i = 0; i < n; i += 1) {
    out[i * 2] = n === 1 ? 0.5 : (pos[i * 2] - minX) / spanX;
    out[i * 2 + 1] = n === 1 ? 0.5 : (pos[i * 2 + 1] - minY) / spanY;
  }
  return out;
}

/** Draw the network; returns a hit test (x, y) -> node name or null. */
export function drawNetwork(canvas, names, layout, network, { selected }) {
  const { g, width, height } = fitCanvas(canvas, 280);
  const pad = 22;
  const index = new Map(names.map((name, i) => [name, i]));
  const xy = (i) => [pad + layout[i * 2] * (width - pad * 2), pad + layout[i * 2 + 1] * (height - pad * 2)];
  const talks = new Map(network.nodes.map((node) => [node.name, node.conversations]));
  const maxWeight = Math.max(1, ...network.edges.map((e) => e[2]));
  g.clearRect(0, 0, width, height);
  for (const [a, b, weight] of network.edges) {
    const ia = index.get(a);
    const ib = index.get(b);
    if (ia === undefined || ib === undefined) continue;
    const [x1, y1] = xy(ia);
    const [x2, y2] = xy(ib);
    const touches = selected && (a === selected || b === selected);
    const alpha = (names.length > 100 ? 0.05 : 0.15) + 0.45 * (weight / maxWeight);
    g.strokeStyle = touches ? 'rgba(214, 140, 0, 0.9)' : `rgba(82, 96, 109, ${alpha})`;
    g.lineWidth = touches ? 2.5 : 0.8 + 2.2 * (weight / maxWeight);
    g.beginPath(); g.moveTo(x1, y1); g.lineTo(x2, y2); g.stroke();
  }
  const labels = names.length <= 40;
  g.font = '10px system-ui, sans-serif';
  g.textAlign = 'center';
  g.textBaseline = 'top';
  const largest = names.length > 100 ? 6 : 13;
  const radii = names.map((name) => clamp(3 + Math.sqrt(talks.get(name) || 0) * 1.5, 3, largest));
  names.forEach((name, i) => {
    const [x, y] = xy(i);
    g.beginPath();
    g.arc(x, y, radii[i], 0, Math.PI * 2);
    g.fillStyle = agentColor(name);
    g.fill();
    g.lineWidth = name === selected ? 3 : 1.5;
    g.strokeStyle = name === selected ? '#d68c00' : '#fff';
    g.stroke();
    if (labels || name === selected) {
      g.fillStyle = '#323f4b';
      g.fillText(name.split(' ')[0], x, y + radii[i] + 2);
    }
  });
  return (px, py) => {
    let best = null;
    let bestDistance = 12 * 12;
    names.forEach((name, i) => {
      const [x, y] = xy(i);
      const d = (x - px) ** 2 + (y - py) ** 2;
      if (d < bestDistance) { best = name; bestDistance = d; }
    });
    return best;
  };
}
