// Boot: load the run and its map, wire the map, time controls and panels, follow live runs.

import { AgentPanel } from './agentpanel.js';
import { getJSON } from './api.js';
import { FrameStore } from './frames.js';
import { MapView } from './mapview.js';
import { Playback } from './playback.js';
import { TownPanel } from './townpanel.js';
import { agentColor, el, toast, truncate } from './util.js';

const $ = (id) => document.getElementById(id);

function setStatus(status) {
  const badge = $('run-status');
  badge.textContent = status === 'running' ? '● live' : status;
  badge.className = `badge status-${status}`;
}

function showRunHeader(run) {
  $('run-title').textContent = run.scenario || 'run';
  const parts = [`${run.agents.length} agents`, `${run.minutes_per_step} min/step`, `seed ${run.seed}`];
  if (run.model) parts.push(String(run.model));
  $('run-detail').textContent = parts.join(' · ');
  document.title = `${run.scenario || 'run'} · societas`;
  setStatus(run.status);
}

class AgentList {
  constructor(list, filter, names, occupations, onSelect) {
    this.names = names;
    this.rows = names.map((name, i) => {
      const dot = el('span', { class: 'dot' });
      dot.style.background = agentColor(name);
      const action = el('div', { class: 'agent-action muted' });
      const row = el('li', { class: 'agent-row', tabindex: '0', dataset: { name } },
        dot, el('div', { class: 'agent-text' },
          el('div', {}, el('strong', { text: name }), el('span', { class: 'muted', text: occupations[i] ? ` · ${occupations[i]}` : '' })),
          action));
      row.addEventListener('click', () => onSelect(name));
      row.addEventListener('keydown', (event) => { if (event.key === 'Enter') onSelect(name); });
      return { row, action, text: '', haystack: `${name} ${occupations[i] || ''}`.toLowerCase() };
    });
    list.replaceChildren(...this.rows.map((r) => r.row));
    filter.addEventListener('input', () => this.filter(filter.value));
    this.query = '';
  }

  filter(query) {
    this.query = query.trim().toLowerCase();
    for (const r of this.rows) r.row.hidden = Boolean(this.query) && !`${r.haystack} ${r.text.toLowerCase()}`.includes(this.query);
  }

  update(state, selected) {
    if (!state) return;
    this.rows.forEach((r, i) => {
      const action = state.actions[i];
      const text = action ? `${action[1]} ${truncate(action[0], 48)}` : '';
      if (text !== r.text) { r.text = text; r.action.textContent = text; }
      r.row.classList.toggle('selected', this.names[i] === selected);
    });
    if (this.query) this.filter(this.query);
  }
}

function readHash() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const step = Number(params.get('step'));
  return { step: Number.isFinite(step) && step >= 0 ? step : null, agent: params.get('agent') };
}

function writeHash(step, agent) {
  const params = new URLSearchParams();
  params.set('step', String(step));
  if (agent) params.set('agent', agent);
  window.history.replaceState(null, '', `#${params}`);
}

function start(run, map) {
  const names = run.agents.map((a) => a.name);
  const index = new Map(names.map((name, i) => [name, i]));
  const clock = { startTime: run.start_time, minutesPerStep: run.minutes_per_step };
  const chunkSize = FrameStore.chunkSizeFor(names.length, run.limits.frame_span);
  const frames = new FrameStore(names, chunkSize, run.last_step, clock);
  let selected = null;
  let activeTab = 'agents';

  const mapView = new MapView($('map'), map, names, { tooltip: $('tooltip'), onSelect: (name) => select(name) });
  const playback = new Playback({
    play: $('play'), speed: $('speed'), scrubber: $('scrubber'), stepLabel: $('step-label'),
    jumpForm: $('jump'), jumpInput: $('jump-input'), follow: $('follow'), followBox: $('follow-box'),
    clockTime: $('clock-time'), clockDay: $('clock-day'),
  }, frames);
  const agentPanel = new AgentPanel($('tab-agent'), { onFocus: (name) => mapView.focus(index.get(name)) });
  const townPanel = new TownPanel($('tab-town'), { agentNames: names, frames, onSelect: (name) => select(name) });
  const agentList = new AgentList($('agent-list'), $('agent-filter'), names, run.agents.map((a) => a.occupation), (name) => select(name));

  function showTab(tab) {
    activeTab = tab;
    for (const button of document.querySelectorAll('.tab')) button.classList.toggle('active', button.dataset.tab === tab);
    for (const name of ['agents', 'agent', 'town']) $(`tab-${name}`).hidden = name !== tab;
    if (tab === 'town') townPanel.show(playback.t, playback.lastStep); else townPanel.hide();
  }

  function select(name) {
    selected = name && index.has(name) ? name : null;
    mapView.select(selected === null ? -1 : index.get(selected));
    townPanel.setSelected(selected);
    writeHash(Math.floor(playback.t), selected);
    if (selected) {
      agentPanel.setAgent(selected, playback.t);
      showTab('agent');
    }
  }

  for (const button of document.querySelectorAll('.tab')) button.addEventListener('click', () => showTab(button.dataset.tab));
  $('zoom-in').addEventListener('click', () => mapView.zoomAt(mapView.width / 2, mapView.height / 2, 1.4));
  $('zoom-out').addEventListener('click', () => mapView.zoomAt(mapView.width / 2, mapView.height / 2, 1 / 1.4));
  $('zoom-fit').addEventListener('click', () => mapView.fit());
  $('show-labels').addEventListener('change', (event) => { mapView.showLabels = event.target.checked; mapView.dirty = true; });

  let stateT = -1;
  let framesVersion = 0;
  let drawnVersion = -1;
  frames.onLoad = () => { framesVersion += 1; playback.render(); };
  frames.onError = (error) => toast(`Frames: ${error.message}`);
  playback.onChange((t) => {
    agentPanel.setStep(t);
    townPanel.setStep(t);
  });
  let hashTimer = 0;
  playback.onChange((t) => {
    clearTimeout(hashTimer);
    hashTimer = setTimeout(() => writeHash(Math.floor(t), selected), 400);
  });

  let previous = performance.now();
  let listClock = 0;
  function frame(now) {
    const dt = Math.min(0.25, (now - previous) / 1000);
    previous = now;
    playback.tick(dt);
    if (playback.t !== stateT || framesVersion !== drawnVersion) {
      const state = frames.stateAt(playback.t);
      if (state) {
        mapView.setState(state);
        stateT = playback.t;
        drawnVersion = framesVersion;
        $('loading').hidden = true;
      }
    }
    mapView.draw();
    listClock += dt;
    if (listClock > 0.5 && activeTab === 'agents') { listClock = 0; agentList.update(mapView.state, selected); }
    requestAnimationFrame(frame);
  }

  const initial = readHash();
  const startStep = initial.step !== null ? Math.min(initial.step, run.last_step) : 0;
  playback.setLive(run.status === 'running');
  frames.ensure(startStep).then(() => {
    playback.seek(startStep);
    agentList.update(frames.stateAt(startStep), selected);
    if (initial.agent) select(initial.agent);
  }).catch((error) => { $('loading').textContent = `Cannot load frames: ${error.message}`; });
  requestAnimationFrame(frame);
  if (run.status === 'running') followLive(run, playback, townPanel, frames);
  window.societasViewer = { playback, mapView, frames, select, names };
}

function followLive(run, playback, townPanel, frames) {
  let lastId = run.last_event_id;
  const source = new EventSource(`/api/live?after_id=${lastId}`);
  source.addEventListener('progress', (event) => {
    const progress = JSON.parse(event.data);
    lastId = progress.last_event_id;
    setStatus(progress.status);
    playback.setLastStep(progress.last_step);
    townPanel.setLastStep(progress.last_step);
    frames.ensure(Math.floor(playback.t)).catch(() => {});
    if (progress.status !== 'running') {
      source.close();
      playback.setLive(false);
    }
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CONNECTING) $('run-status').textContent = 'reconnecting…';
  });
}

async function boot() {
  try {
    const run = await getJSON('/api/run');
    if (!run.agents.length) throw new Error('this run has no agents recorded yet');
    const map = await getJSON('/api/map');
    showRunHeader(run);
    start(run, map);
  } catch (error) {
    $('loading').textContent = `Cannot show this run: ${error.message}`;
    $('run-title').textContent = 'No run';
  }
}

boot();
