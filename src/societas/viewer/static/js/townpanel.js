// The town panel: news diffusion, the conversation network and model usage up to the viewed
// step, plus the run's summary.json once it exists.

import { getJSON } from './api.js';
import { SERIES_COLORS, drawDiffusion, drawNetwork, layoutNetwork } from './charts.js';
import { el, formatClock, formatDay, formatNumber, throttle, toast, truncate } from './util.js';

const TARGET_CALLS = 4;
const TARGET_TOKENS = 2000;

function figure(label, value, note = '', warn = false) {
  return el('div', { class: `figure${warn ? ' warn' : ''}` },
    el('div', { class: 'figure-value', text: value }),
    el('div', { class: 'figure-label', text: label }),
    note ? el('div', { class: 'figure-note', text: note }) : null);
}

function renderValue(value, depth = 0) {
  if (value === null || typeof value !== 'object') return el('span', { text: String(value) });
  if (depth >= 3) return el('span', { class: 'muted', text: truncate(JSON.stringify(value), 120) });
  const entries = Array.isArray(value) ? value.slice(0, 20).map((v, i) => [i, v]) : Object.entries(value).slice(0, 40);
  return el('dl', { class: 'tree' }, entries.map(([k, v]) => [el('dt', { text: String(k) }), el('dd', {}, renderValue(v, depth + 1))]));
}

export class TownPanel {
  constructor(root, { agentNames, frames, onSelect }) {
    this.root = root;
    this.names = agentNames;
    this.frames = frames;
    this.onSelect = onSelect;
    this.visible = false;
    this.step = 0;
    this.lastStep = 0;
    this.selected = null;
    this.layout = null;
    this.diffusionData = null;
    this.networkData = null;
    this.build();
    this.refresh = throttle((step) => this.loadAt(step), 1500);
    this.reloadDiffusion = throttle(() => this.loadDiffusion(), 3000);
  }

  build() {
    this.diffusionCanvas = el('canvas', { class: 'chart', 'aria-label': 'News diffusion chart' });
    this.legend = el('ul', { class: 'legend' });
    this.networkCanvas = el('canvas', { class: 'chart network', 'aria-label': 'Conversation network' });
    this.networkNote = el('p', { class: 'muted small' });
    this.usageBox = el('div', { class: 'usage' });
    this.summaryBox = el('div', { class: 'summary-box' });
    this.networkCanvas.addEventListener('click', (event) => {
      const name = this.hit && this.hit(event.offsetX, event.offsetY);
      if (name) this.onSelect(name);
    });
    this.root.replaceChildren(
      el('details', { class: 'section', open: true }, el('summary', {}, el('span', { text: 'News diffusion' })),
        el('div', { class: 'chart-box' }, this.diffusionCanvas), this.legend),
      el('details', { class: 'section', open: true }, el('summary', {}, el('span', { text: 'Who talks with whom' })),
        el('div', { class: 'chart-box' }, this.networkCanvas), this.networkNote),
      el('details', { class: 'section', open: true }, el('summary', {}, el('span', { text: 'Model usage' })), this.usageBox),
      el('details', { class: 'section' }, el('summary', {}, el('span', { text: 'Run summary' })), this.summaryBox),
    );
  }

  show(step, lastStep) {
    this.visible = true;
    this.step = Math.floor(step);
    this.lastStep = lastStep;
    if (!this.diffusionData) this.loadDiffusion();
    if (!this.layout) this.loadLayout();
    this.loadSummary();
    this.loadAt(this.step);
  }

  hide() {
    this.visible = false;
  }

  setStep(step) {
    this.step = Math.floor(step);
    if (!this.visible) return;
    this.drawDiffusionChart();
    this.refresh(this.step);
  }

  setSelected(name) {
    this.selected = name;
    if (this.visible) this.drawNetworkChart();
  }

  setLastStep(lastStep) {
    this.lastStep = lastStep;
    if (this.visible) { this.reloadDiffusion(); this.refresh(this.step); }
  }

  label(step) {
    const time = this.frames.timeAt(step);
    if (!time) return `#${step}`;
    const first = this.frames.timeAt(0);
    const sameDay = first && first.slice(0, 10) === (this.frames.timeAt(this.lastStep) || '').slice(0, 10);
    return sameDay ? formatClock(time) : `${formatDay(time).split(' ').slice(1, 3).join(' ')} ${formatClock(time)}`;
  }

  async loadDiffusion() {
    try {
      this.diffusionData = await getJSON('/api/town/diffusion', { step: this.lastStep });
      this.drawDiffusionChart();
    } catch (error) { toast(`Diffusion: ${error.message}`); }
  }

  drawDiffusionChart() {
    const data = this.diffusionData;
    if (!data || !this.visible) return;
    drawDiffusion(this.diffusionCanvas, data, { lastStep: this.lastStep, cursor: this.step, label: (s) => this.label(s) });
    if (!data.items.length) {
      // A run without its scenario copy has no news items to trace: say so, do not guess.
      this.legend.replaceChildren(el('li', { class: 'muted', text: data.unavailable || 'The scenario seeds no news.' }));
      return;
    }
    this.legend.replaceChildren(...data.items.map((item, k) => {
      const heard = item.points.filter(([step]) => step <= this.step).reduce((_, [, count]) => count, 0);
      const swatch = el('span', { class: 'swatch' });
      swatch.style.background = SERIES_COLORS[k % SERIES_COLORS.length];
      return el('li', { title: `${item.news_id}: counted by ${item.method}, ${item.initial} knew at the start` }, swatch, el('span', { text: item.label || item.news_id }),
        el('span', { class: 'muted', text: ` ${heard}/${data.population} by now` }));
    }));
  }

  async loadLayout() {
    // The layout uses every conversation of the run so nodes stay put while scrubbing.
    try {
      const all = await getJSON('/api/town/network', { step: this.lastStep });
      this.layout = layoutNetwork(this.names, all.edges);
      this.drawNetworkChart();
    } catch (error) { toast(`Network: ${error.message}`); }
  }

  async loadAt(step) {
    if (!this.visible) return;
    try {
      const [network, usage] = await Promise.all([
        getJSON('/api/town/network', { step }),
        getJSON('/api/town/usage', { step }),
      ]);
      this.networkData = network;
      this.drawNetworkChart();
      this.renderUsage(usage);
    } catch (error) { toast(`Town panel: ${error.message}`); }
  }

  drawNetworkChart() {
    if (!this.layout || !this.networkData || !this.visible) return;
    this.hit = drawNetwork(this.networkCanvas, this.names, this.layout, this.networkData, { selected: this.selected });
    const pairs = this.networkData.edges.length;
    const talks = this.networkData.edges.reduce((sum, e) => sum + e[2], 0);
    this.networkNote.textContent = `${pairs} pairs have talked, ${talks} conversation links so far. Click a node to open the agent.`;
  }

  // The server's prefix reuse: the share of prompt tokens it did not have to read again.
  renderUsage(usage) {
    const perHour = usage.per_agent_hour;
    const callsHigh = perHour.calls !== null && perHour.calls > TARGET_CALLS;
    const tokensHigh = perHour.tokens !== null && perHour.tokens > TARGET_TOKENS;
    const cachedShare = usage.totals.calls ? usage.totals.cached / usage.totals.calls : 0;
    const table = el('table', { class: 'table' },
      el('thead', {}, el('tr', {}, ['purpose', 'calls', 'prompt', 'reused', 'completion', 'cached'].map((h) => el('th', { text: h })))),
      el('tbody', {}, usage.purposes.map((p) => el('tr', {},
        el('td', { text: p.purpose }), el('td', { text: formatNumber(p.calls) }),
        el('td', { text: formatNumber(p.prompt_tokens) }), el('td', { text: shareText(p.reuse_share) }),
        el('td', { text: formatNumber(p.completion_tokens) }),
        el('td', { text: formatNumber(p.cached) })))));
    this.usageBox.replaceChildren(
      el('div', { class: 'figures' },
        figure('calls / agent-hour', formatNumber(perHour.calls, 2), `target ≤ ${TARGET_CALLS}`, callsHigh),
        figure('tokens / agent-hour', formatNumber(perHour.tokens, 0), `target ≤ ${formatNumber(TARGET_TOKENS)}`, tokensHigh),
        figure('model calls', formatNumber(usage.totals.calls), `${Math.round(cachedShare * 100)}% cached; ${formatNumber(usage.totals.embedding_requests)} embedding requests apart`),
        figure('tokens', formatNumber(usage.totals.tokens), `${formatNumber(usage.totals.errors)} errors`),
        figure('prompt reused', shareText(usage.totals.reuse_share),
          `${formatNumber(usage.totals.reused_prompt_tokens)} of ${formatNumber(usage.totals.prompt_tokens)} prompt tokens read before`)),
      el('p', { class: 'muted small', text: `${formatNumber(usage.agent_hours, 1)} agent-hours (${formatNumber(usage.game_hours, 1)} game hours × ${this.names.length} agents)` }),
      usage.purposes.length ? table : el('p', { class: 'muted', text: 'No model calls yet.' }));
  }

  async loadSummary() {
    try {
      const body = await getJSON('/api/summary');
      this.summaryBox.replaceChildren(body.summary ? renderValue(body.summary) : el('p', { class: 'muted', text: body.problem }));
    } catch (error) {
      this.summaryBox.replaceChildren(el('p', { class: 'muted', text: error.status === 404 ? 'Written when the run finishes.' : error.message }));
    }
  }
}

function shareText(share) {
  return share === null || share === undefined ? 'n/a' : `${Math.round(share * 100)}%`;
}
