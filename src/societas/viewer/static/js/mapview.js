// The town map on a canvas: tiles pre-rendered once, then agents, labels and speech drawn
// over them every frame. Wheel zooms, drag pans, click selects an agent.

import { agentColor, clamp, hashString, initials, truncate } from './util.js';

const WALL = '#4a4f5c';
const WALL_EDGE = '#353943';
const GROUND = '#ebe6da';
const OBJECT = '#9b7b4f';
const GREEN_WORDS = /park|garden|lawn|field|forest|meadow/i;

function placeFill(place, map) {
  const [x0, y0, x1, y1] = place.bbox || [0, 0, 0, 0];
  const share = ((x1 - x0 + 1) * (y1 - y0 + 1)) / (map.width * map.height);
  if (share >= 0.5) return GROUND;
  const area = String(place.address || '').split(':')[0];
  const hue = GREEN_WORDS.test(place.address) ? 105 : hashString(area) % 360;
  if (place.kind === 'room') {
    const lightness = 76 + (hashString(place.address) % 7);
    return `hsl(${hue} 42% ${lightness}%)`;
  }
  return `hsl(${hue} 34% 84%)`;
}

function isGround(place, map) {
  return placeFill(place, map) === GROUND;
}

/** Draw the static map once into an offscreen canvas (T pixels per tile). */
function renderBase(map) {
  const tile = clamp(Math.floor(4096 / Math.max(map.width, map.height)), 2, 24);
  const canvas = document.createElement('canvas');
  canvas.width = map.width * tile;
  canvas.height = map.height * tile;
  const g = canvas.getContext('2d');
  const fills = map.places.map((place) => placeFill(place, map));
  const rows = map.rows;
  for (let y = 0; y < map.height; y += 1) {
    for (let x = 0; x < map.width; x += 1) {
      const index = rows[y] ? rows[y][x] : -1;
      g.fillStyle = index < 0 ? WALL : fills[index] || GROUND;
      g.fillRect(x * tile, y * tile, tile, tile);
    }
  }
  const at = (x, y) => (rows[y] && x >= 0 && x < map.width ? rows[y][x] : -1);
  g.fillStyle = 'rgba(60, 50, 40, 0.35)';
  for (let y = 0; y < map.height; y += 1) {
    for (let x = 0; x < map.width; x += 1) {
      const here = at(x, y);
      if (here < 0) {
        if (at(x, y + 1) >= 0) { g.fillStyle = WALL_EDGE; g.fillRect(x * tile, (y + 1) * tile - Math.max(1, tile / 5), tile, Math.max(1, tile / 5)); g.fillStyle = 'rgba(60, 50, 40, 0.35)'; }
        continue;
      }
      const right = at(x + 1, y);
      const below = y + 1 < map.height ? at(x, y + 1) : here;
      if (right >= 0 && right !== here) g.fillRect((x + 1) * tile - 1, y * tile, 1, tile);
      if (below >= 0 && below !== here) g.fillRect(x * tile, (y + 1) * tile - 1, tile, 1);
    }
  }
  if (tile >= 8) {
    g.fillStyle = 'rgba(0, 0, 0, 0.045)';
    for (let x = 1; x < map.width; x += 1) g.fillRect(x * tile, 0, 1, canvas.height);
    for (let y = 1; y < map.height; y += 1) g.fillRect(0, y * tile, canvas.width, 1);
  }
  for (const object of map.objects || []) {
    const [x, y] = object.tile || [-1, -1];
    if (x < 0 || y < 0) continue;
    g.fillStyle = OBJECT;
    const inset = Math.max(1, tile * 0.22);
    g.fillRect(x * tile + inset, y * tile + inset, tile - inset * 2, tile - inset * 2);
  }
  return { canvas, tile };
}

function roundRect(g, x, y, w, h, r) {
  g.beginPath();
  g.moveTo(x + r, y);
  g.arcTo(x + w, y, x + w, y + h, r);
  g.arcTo(x + w, y + h, x, y + h, r);
  g.arcTo(x, y + h, x, y, r);
  g.arcTo(x, y, x + w, y, r);
  g.closePath();
}

function overlap(a, b) {
  return a.left < b.left + b.w && b.left < a.left + a.w && a.top < b.top + b.h && b.top < a.top + a.h;
}

function wrap(g, text, width, maxLines) {
  const words = text.split(/\s+/);
  const lines = [];
  let line = '';
  for (const word of words) {
    const next = line ? `${line} ${word}` : word;
    if (g.measureText(next).width > width && line) {
      lines.push(line);
      line = word;
      if (lines.length === maxLines) break;
    } else {
      line = next;
    }
  }
  if (lines.length < maxLines && line) lines.push(line);
  else if (line && lines.length === maxLines) lines[maxLines - 1] = truncate(`${lines[maxLines - 1]} ${line}`, 40);
  return lines;
}

export class MapView {
  constructor(canvas, map, agentNames, { tooltip, onSelect }) {
    this.canvas = canvas;
    this.g = canvas.getContext('2d');
    this.map = map;
    this.names = agentNames;
    this.colors = agentNames.map(agentColor);
    this.labels = agentNames.map(initials);
    // Agents sharing a tile fan out a little so each stays visible.
    this.offsets = agentNames.map((name) => {
      const h = hashString(name);
      return [((h % 7) - 3) * 0.07, (((h >>> 8) % 7) - 3) * 0.07];
    });
    this.tooltip = tooltip;
    this.onSelect = onSelect;
    this.base = renderBase(map);
    this.areas = new Map(map.places.filter((p) => p.kind === 'area').map((p) => [p.address, p]));
    this.objectAt = new Map((map.objects || []).map((o) => [`${o.tile[0]},${o.tile[1]}`, o]));
    this.state = null;
    this.selected = -1;
    this.hovered = -1;
    this.showLabels = true;
    this.scale = 16;
    this.ox = 0;
    this.oy = 0;
    this.dirty = true;
    this.resize();
    this.fit();
    this.bindEvents();
    new ResizeObserver(() => { this.resize(); this.dirty = true; }).observe(canvas.parentElement);
  }

  resize() {
    const rect = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.width = Math.max(1, rect.width);
    this.height = Math.max(1, rect.height);
    this.canvas.width = Math.round(this.width * dpr);
    this.canvas.height = Math.round(this.height * dpr);
    this.dpr = dpr;
  }

  fit() {
    this.scale = Math.min(this.width / this.map.width, this.height / this.map.height) * 0.97;
    this.ox = (this.width - this.map.width * this.scale) / 2;
    this.oy = (this.height - this.map.height * this.scale) / 2;
    this.dirty = true;
  }

  zoomAt(px, py, factor) {
    const scale = clamp(this.scale * factor, 1, 96);
    const k = scale / this.scale;
    this.ox = px - (px - this.ox) * k;
    this.oy = py - (py - this.oy) * k;
    this.scale = scale;
    this.dirty = true;
  }

  focus(index) {
    if (!this.state || index < 0) return;
    const x = this.state.positions[index * 2];
    const y = this.state.positions[index * 2 + 1];
    if (Number.isNaN(x)) return;
    this.scale = Math.max(this.scale, 22);
    this.ox = this.width / 2 - (x + 0.5) * this.scale;
    this.oy = this.height / 2 - (y + 0.5) * this.scale;
    this.dirty = true;
  }

  setState(state) {
    this.state = state;
    this.dirty = true;
  }

  select(index) {
    this.selected = index;
    this.dirty = true;
  }

  screenOf(i) {
    const p = this.state.positions;
    const [dx, dy] = this.offsets[i];
    return [this.ox + (p[i * 2] + 0.5 + dx) * this.scale, this.oy + (p[i * 2 + 1] + 0.5 + dy) * this.scale];
  }

  radius() {
    return clamp(this.scale * 0.5, 5, 16);
  }

  hitTest(px, py) {
    if (!this.state) return -1;
    let best = -1;
    let bestDistance = (this.radius() + 4) ** 2;
    for (let i = 0; i < this.names.length; i += 1) {
      if (Number.isNaN(this.state.positions[i * 2])) continue;
      const [x, y] = this.screenOf(i);
      const d = (x - px) ** 2 + (y - py) ** 2;
      if (d <= bestDistance) { best = i; bestDistance = d; }
    }
    return best;
  }

  bindEvents() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener('pointerdown', (e) => {
      drag = { x: e.offsetX, y: e.offsetY, ox: this.ox, oy: this.oy, moved: false };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener('pointermove', (e) => {
      if (drag) {
        const dx = e.offsetX - drag.x;
        const dy = e.offsetY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        if (drag.moved) { this.ox = drag.ox + dx; this.oy = drag.oy + dy; this.dirty = true; }
        return;
      }
      this.hover(e.offsetX, e.offsetY);
    });
    c.addEventListener('pointerup', (e) => {
      if (drag && !drag.moved) {
        const hit = this.hitTest(e.offsetX, e.offsetY);
        this.onSelect(hit >= 0 ? this.names[hit] : null);
      }
      drag = null;
    });
    c.addEventListener('pointerleave', () => { this.hovered = -1; this.tooltip.hidden = true; this.dirty = true; });
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.zoomAt(e.offsetX, e.offsetY, Math.exp(-e.deltaY * 0.0015));
    }, { passive: false });
  }

  hover(px, py) {
    const hit = this.hitTest(px, py);
    if (hit !== this.hovered) { this.hovered = hit; this.dirty = true; }
    const tx = Math.floor((px - this.ox) / this.scale);
    const ty = Math.floor((py - this.oy) / this.scale);
    const lines = [];
    if (hit >= 0) {
      const action = this.state && this.state.actions[hit];
      lines.push([this.names[hit], 'strong']);
      if (action) lines.push([`${action[1]} ${action[0]}`.trim(), ''], [action[2], 'muted']);
    } else {
      const object = this.objectAt.get(`${tx},${ty}`);
      const place = this.placeAt(tx, ty);
      if (object) {
        const state = (this.state && this.state.objects[object.address]) || object.state;
        lines.push([object.address.split(':').pop(), 'strong'], [state || '', '']);
      }
      if (place) lines.push([this.placeLabel(place, true), object ? 'muted' : 'strong']);
    }
    this.showTooltip(lines, px, py);
  }

  placeAt(x, y) {
    const row = this.map.rows[y];
    const index = row && x >= 0 ? row[x] : -1;
    return index >= 0 && index !== undefined ? this.map.places[index] : null;
  }

  showTooltip(lines, px, py) {
    const tip = this.tooltip;
    if (!lines.length) { tip.hidden = true; return; }
    tip.replaceChildren(...lines.filter(([t]) => t).map(([text, cls]) => {
      const div = document.createElement('div');
      div.textContent = text;
      if (cls) div.className = cls;
      return div;
    }));
    tip.hidden = false;
    tip.style.left = `${Math.min(px + 14, this.width - 220)}px`;
    tip.style.top = `${py + 14}px`;
  }

  draw() {
    if (!this.dirty) return;
    this.dirty = false;
    const g = this.g;
    g.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    g.fillStyle = '#d9d4c7';
    g.fillRect(0, 0, this.width, this.height);
    g.imageSmoothingEnabled = this.scale < this.base.tile;
    g.drawImage(this.base.canvas, this.ox, this.oy, this.map.width * this.scale, this.map.height * this.scale);
    if (this.showLabels) this.drawPlaceLabels(g);
    if (this.state) this.drawAgents(g);
  }

  // Areas are named at their top edge; rooms at their centre once zoomed in enough to read.
  drawPlaceLabels(g) {
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.lineJoin = 'round';
    for (const place of this.map.places) {
      if (isGround(place, this.map) || !place.bbox) continue;
      const isArea = place.kind === 'area';
      const text = this.placeLabel(place, false);
      if (!isArea && (this.scale < 11 || text === this.areaLabel(place))) continue;
      const [x0, y0, x1, y1] = place.bbox;
      const size = clamp(this.scale * (isArea ? 0.85 : 0.6), 9, isArea ? 16 : 13);
      g.font = `${isArea ? 700 : 600} ${size}px system-ui, sans-serif`;
      if (g.measureText(text).width > (x1 - x0 + 1) * this.scale * 1.05) continue;
      const x = this.ox + ((x0 + x1 + 1) / 2) * this.scale;
      const y = isArea ? this.oy + (y0 + 0.2) * this.scale + size : this.oy + ((y0 + y1 + 1) / 2) * this.scale;
      g.strokeStyle = 'rgba(255, 255, 255, 0.85)';
      g.lineWidth = 3;
      g.strokeText(text, x, y);
      g.fillStyle = isArea ? '#2f3b33' : '#5a4e42';
      g.fillText(text, x, y);
    }
  }

  areaLabel(place) {
    const area = this.areas.get(String(place.address).split(':')[0]);
    return area ? area.label || area.address : '';
  }

  /** A place's name; with `full`, a room is named with its area ('Hobbs Cafe · counter'). */
  placeLabel(place, full) {
    const own = place.label || String(place.address).split(':').pop();
    if (!full || place.kind === 'area') return own;
    const area = this.areaLabel(place);
    return area && area !== own ? `${area} · ${own}` : own;
  }

  drawAgents(g) {
    const r = this.radius();
    const n = this.names.length;
    const visible = [];
    for (let i = 0; i < n; i += 1) if (this.onScreen(i, 40)) visible.push(i);
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    for (const i of visible) {
      const [x, y] = this.screenOf(i);
      if (i === this.selected) {
        g.beginPath();
        g.arc(x, y, r + 5, 0, Math.PI * 2);
        g.fillStyle = 'rgba(255, 196, 0, 0.55)';
        g.fill();
      }
      g.beginPath();
      g.arc(x, y, r, 0, Math.PI * 2);
      g.fillStyle = this.colors[i];
      g.fill();
      g.lineWidth = 2;
      g.strokeStyle = '#fff';
      g.stroke();
      if (r >= 9) {
        g.font = `700 ${Math.round(r * 0.8)}px system-ui, sans-serif`;
        g.fillStyle = '#fff';
        g.fillText(this.labels[i], x, y + 0.5);
      }
      const action = this.state.actions[i];
      if (action && action[1]) {
        g.font = `${Math.round(clamp(r * 1.5, 13, 24))}px "Noto Color Emoji", "Apple Color Emoji", sans-serif`;
        g.fillText(action[1], x + r * 1.1, y - r * 1.15);
      }
    }
    const labelled = this.showLabels && (n <= 30 || this.scale >= 24);
    // Name tags never cover each other: the selected and hovered agents' first, then any that fit.
    const front = [this.selected, this.hovered].filter((i) => i >= 0 && this.onScreen(i, 40));
    const order = labelled ? [...front, ...visible.filter((i) => !front.includes(i))] : front;
    const tags = [];
    for (const i of order) {
      const tag = this.nameTag(g, i, r);
      if (!tags.some((o) => overlap(tag, o))) tags.push(tag);
    }
    for (const tag of tags.reverse()) this.drawNameTag(g, tag);
    // Bubbles never cover each other nor the selected agent's tag: its own bubble first.
    const placed = tags.filter((tag) => front.includes(tag.i));
    const bubbles = [...this.state.bubbles].sort((a, b) => (b.agent === this.selected) - (a.agent === this.selected));
    for (const bubble of bubbles) {
      const box = this.bubbleBox(g, bubble.agent, bubble.text, r);
      if (!box) continue;
      if (placed.some((o) => overlap(box, o))) continue;
      placed.push(box);
      this.drawBubble(g, box);
    }
  }

  nameTag(g, i, r) {
    const [x, y] = this.screenOf(i);
    const action = this.state.actions[i];
    const name = this.names[i];
    const detail = action ? truncate(action[0], 30) : '';
    g.font = '600 11px system-ui, sans-serif';
    const nameWidth = g.measureText(name).width;
    g.font = '10px system-ui, sans-serif';
    const detailWidth = detail ? g.measureText(detail).width : 0;
    const w = Math.max(nameWidth, detailWidth) + 10;
    return { i, x, name, detail, w, h: detail ? 28 : 16, left: x - w / 2, top: y + r + 3 };
  }

  drawNameTag(g, { i, x, name, detail, w, h, left, top }) {
    roundRect(g, left, top, w, h, 5);
    g.fillStyle = i === this.selected ? 'rgba(255, 248, 220, 0.96)' : 'rgba(255, 255, 255, 0.9)';
    g.fill();
    g.strokeStyle = this.colors[i];
    g.lineWidth = i === this.selected ? 2 : 1;
    g.stroke();
    g.fillStyle = '#1f2933';
    g.font = '600 11px system-ui, sans-serif';
    g.fillText(name, x, top + 8);
    if (detail) {
      g.fillStyle = '#52606d';
      g.font = '10px system-ui, sans-serif';
      g.fillText(detail, x, top + 20);
    }
  }

  /** Whether agent i has a position within `margin` pixels of the visible map. */
  onScreen(i, margin) {
    if (Number.isNaN(this.state.positions[i * 2])) return false;
    const [x, y] = this.screenOf(i);
    return x > -margin && y > -margin && x < this.width + margin && y < this.height + margin;
  }

  bubbleBox(g, i, text, r) {
    if (!this.onScreen(i, 0)) return null;
    const [x, y] = this.screenOf(i);
    g.font = '12px system-ui, sans-serif';
    const lines = wrap(g, text, 190, 3);
    const w = Math.max(...lines.map((line) => g.measureText(line).width)) + 16;
    const h = lines.length * 15 + 10;
    const left = clamp(x - w / 2, 4, Math.max(4, this.width - w - 4));
    return { i, x, y, r, lines, w, h, left, top: y - r - 16 - h };
  }

  drawBubble(g, { i, x, y, r, lines, w, h, left, top }) {
    g.font = '12px system-ui, sans-serif';
    roundRect(g, left, top, w, h, 8);
    g.fillStyle = '#fff';
    g.shadowColor = 'rgba(0, 0, 0, 0.18)';
    g.shadowBlur = 6;
    g.fill();
    g.shadowBlur = 0;
    g.strokeStyle = this.colors[i];
    g.lineWidth = 1.5;
    g.stroke();
    g.beginPath();
    g.moveTo(x - 6, top + h - 1);
    g.lineTo(x, y - r - 4);
    g.lineTo(x + 6, top + h - 1);
    g.fillStyle = '#fff';
    g.fill();
    g.fillStyle = '#1f2933';
    g.textAlign = 'left';
    lines.forEach((line, k) => g.fillText(line, left + 8, top + 12 + k * 15));
    g.textAlign = 'center';
  }
}
