// Frame chunks: agents' tiles, actions and speech per step, fetched a step range at a time
// and expanded into flat per-step arrays so any (fractional) time is a few array reads.

import { getJSON } from './api.js';

const MAX_CHUNKS = 24;

function buildChunk(data, agentCount) {
  const { start, end } = data;
  const steps = end - start + 1;
  const n = agentCount;
  const tiles = new Int32Array(n * steps * 2).fill(-1);
  const actionAt = new Int32Array(n * steps).fill(-1);
  const actions = [];
  data.tiles.forEach((tile, i) => {
    if (tile) { tiles[i * 2] = tile[0]; tiles[i * 2 + 1] = tile[1]; }
  });
  data.actions.forEach((action, i) => {
    if (action) { actionAt[i] = actions.push(action) - 1; }
  });
  for (const [step, i, x, y] of data.changes.moves) {
    const at = ((step - start) * n + i) * 2;
    tiles[at] = x;
    tiles[at + 1] = y;
  }
  for (const [step, i, text, emoji, place] of data.changes.actions) {
    actionAt[(step - start) * n + i] = actions.push([text, emoji, place]) - 1;
  }
  // Forward-fill: a step without a change keeps the previous step's tile and action.
  for (let s = 1; s < steps; s += 1) {
    for (let i = 0; i < n; i += 1) {
      const at = (s * n + i) * 2;
      if (tiles[at] < 0) { tiles[at] = tiles[at - n * 2]; tiles[at + 1] = tiles[at + 1 - n * 2]; }
      if (actionAt[s * n + i] < 0) actionAt[s * n + i] = actionAt[(s - 1) * n + i];
    }
  }
  const speech = new Map();
  for (const [step, i, text, conversation] of data.changes.utterances) {
    if (!speech.has(step)) speech.set(step, new Map());
    const byConversation = speech.get(step);
    const key = conversation || `solo-${i}`;
    if (!byConversation.has(key)) byConversation.set(key, []);
    byConversation.get(key).push([i, text]);
  }
  return {
    start, end, complete: data.complete, n, tiles, actionAt, actions, speech,
    objects: data.objects, objectChanges: data.changes.objects, times: data.times,
  };
}

export class FrameStore {
  /**
   * @param {string[]} agentNames
   * @param {number} chunkSize steps per request
   * @param {{startTime: string|null, minutesPerStep: number}} clock the run's clock, for times
   *   of steps not loaded yet
   */
  constructor(agentNames, chunkSize, lastStep, clock) {
    this.agentNames = agentNames;
    this.clock = clock;
    this.chunkSize = chunkSize;
    this.lastStep = lastStep;
    this.chunks = new Map();
    this.pending = new Map();
    this.onLoad = () => {};
    this.onError = () => {};
  }

  static chunkSizeFor(agentCount, maxSpan) {
    return Math.max(10, Math.min(maxSpan, 200, Math.round(24000 / Math.max(1, agentCount))));
  }

  keyOf(step) {
    return Math.floor(step / this.chunkSize);
  }

  chunkAt(step) {
    const chunk = this.chunks.get(this.keyOf(step));
    return chunk && step >= chunk.start && step <= chunk.end ? chunk : null;
  }

  isReady(step) {
    return this.chunkAt(Math.min(Math.max(0, step), this.lastStep)) !== null;
  }

  /** Make sure the chunk holding `step` is loaded or loading; resolves when it is there. */
  ensure(step) {
    const key = this.keyOf(Math.max(0, Math.min(step, this.lastStep)));
    const have = this.chunks.get(key);
    const stale = have && !have.complete && have.end < Math.min(this.lastStep, (key + 1) * this.chunkSize);
    if (have && !stale) return Promise.resolve(have);
    if (this.pending.has(key)) return this.pending.get(key);
    const start = key * this.chunkSize;
    const request = getJSON('/api/frames', { start, end: start + this.chunkSize })
      .then((data) => {
        const chunk = buildChunk(data, this.agentNames.length);
        this.chunks.delete(key);
        this.chunks.set(key, chunk);
        while (this.chunks.size > MAX_CHUNKS) this.chunks.delete(this.chunks.keys().next().value);
        this.onLoad(chunk);
        return chunk;
      })
      .catch((error) => { this.onError(error); throw error; })
      .finally(() => this.pending.delete(key));
    this.pending.set(key, request);
    return request;
  }

  /** Load the chunk after the one holding `step` once playback is half-way through it. */
  prefetch(step) {
    const key = this.keyOf(step);
    if (step - key * this.chunkSize > this.chunkSize / 2 && (key + 1) * this.chunkSize <= this.lastStep) {
      this.ensure((key + 1) * this.chunkSize).catch(() => {});
    }
  }

  setLastStep(lastStep) {
    this.lastStep = lastStep;
  }

  /** The game time (ISO) of a step: recorded when its chunk is loaded, else from the clock. */
  timeAt(step) {
    const chunk = this.chunkAt(step);
    const recorded = chunk ? chunk.times[String(step)] : null;
    if (recorded) return recorded;
    const start = this.clock.startTime ? Date.parse(`${this.clock.startTime.slice(0, 19)}Z`) : NaN;
    if (Number.isNaN(start)) return null;
    return new Date(start + step * this.clock.minutesPerStep * 60000).toISOString().slice(0, 19);
  }

  tileOf(chunk, step, i) {
    const at = ((step - chunk.start) * chunk.n + i) * 2;
    return chunk.tiles[at] < 0 ? null : [chunk.tiles[at], chunk.tiles[at + 1]];
  }

  /**
   * Everything drawn at time t (a fractional step): interpolated positions (NaN when unknown),
   * actions, the utterance being spoken in each conversation, and object states.
   */
  stateAt(t) {
    const s0 = Math.floor(t);
    const chunk = this.chunkAt(s0);
    if (!chunk) return null;
    const s1 = Math.min(s0 + 1, chunk.end);
    const f = s1 > s0 ? t - s0 : 0;
    const n = chunk.n;
    const positions = new Float32Array(n * 2).fill(NaN);
    const actions = new Array(n).fill(null);
    for (let i = 0; i < n; i += 1) {
      const a = this.tileOf(chunk, s0, i);
      const b = this.tileOf(chunk, s1, i) || a;
      const from = a || b;
      if (from) {
        positions[i * 2] = from[0] + (b[0] - from[0]) * f;
        positions[i * 2 + 1] = from[1] + (b[1] - from[1]) * f;
      }
      const ai = chunk.actionAt[(s0 - chunk.start) * n + i];
      actions[i] = ai >= 0 ? chunk.actions[ai] : null;
    }
    return { step: s0, time: chunk.times[String(s0)] || null, positions, actions,
      bubbles: this.bubblesAt(chunk, s0, t - s0), objects: this.objectsAt(chunk, s0) };
  }

  // In a step, each conversation's lines are spread over the step so the dialogue plays out.
  bubblesAt(chunk, step, fraction) {
    const byConversation = chunk.speech.get(step);
    if (!byConversation) return [];
    const bubbles = [];
    for (const lines of byConversation.values()) {
      const [i, text] = lines[Math.min(lines.length - 1, Math.floor(fraction * lines.length))];
      bubbles.push({ agent: i, text });
    }
    return bubbles;
  }

  objectsAt(chunk, step) {
    const states = { ...chunk.objects };
    for (const [at, address, state] of chunk.objectChanges) {
      if (at > step) break;
      states[address] = state;
    }
    return states;
  }
}
