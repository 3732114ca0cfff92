// Time controls: play/pause, speed, the scrubber over the whole run, jump to a game time,
// and following a run that is still being written.

import { getJSON } from './api.js';
import { formatClock, formatDay, parseGameTime } from './util.js';

export const SPEEDS = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64];

/** Turn what the user typed into a step or an ISO time: '#120', '14:30', '2024-02-13 14:30'. */
export function parseJump(text, currentIso) {
  const value = text.trim();
  let m = /^(?:#|step\s*)(\d+)$/i.exec(value);
  if (m) return { step: Number(m[1]) };
  m = /^(\d{1,2}):(\d{2})$/.exec(value);
  const today = parseGameTime(currentIso);
  if (m && today && +m[1] < 24 && +m[2] < 60) {
    return { time: `${today.date}T${m[1].padStart(2, '0')}:${m[2]}:00` };
  }
  m = /^(\d{4}-\d{2}-\d{2})[ T](\d{1,2}):(\d{2})$/.exec(value);
  if (m && +m[2] < 24 && +m[3] < 60) return { time: `${m[1]}T${m[2].padStart(2, '0')}:${m[3]}:00` };
  return null;
}

export class Playback {
  constructor(elements, frames) {
    this.el = elements;
    this.frames = frames;
    this.t = 0;
    this.lastStep = frames.lastStep;
    this.playing = false;
    this.speed = 2;
    this.follow = false;
    this.listeners = [];
    this.setupSpeed();
    this.bind();
    this.setLastStep(this.lastStep);
  }

  onChange(fn) {
    this.listeners.push(fn);
  }

  setupSpeed() {
    for (const speed of SPEEDS) {
      const option = document.createElement('option');
      option.value = String(speed);
      option.textContent = `${speed} step${speed === 1 ? '' : 's'}/s`;
      this.el.speed.append(option);
    }
    this.el.speed.value = String(this.speed);
  }

  bind() {
    this.el.play.addEventListener('click', () => this.toggle());
    this.el.speed.addEventListener('change', () => { this.speed = Number(this.el.speed.value); });
    this.el.scrubber.addEventListener('input', () => {
      this.setFollow(false);
      this.seek(Number(this.el.scrubber.value));
    });
    this.el.follow.addEventListener('change', () => this.setFollow(this.el.follow.checked));
    this.el.jumpForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.jump(this.el.jumpInput.value);
    });
    document.addEventListener('keydown', (event) => {
      // Form controls keep their own keys (a focused button already toggles on Space).
      if (event.target instanceof Element && event.target.closest('input, select, button, textarea')) return;
      if (event.code === 'Space') { event.preventDefault(); this.toggle(); }
      if (event.code === 'ArrowRight') this.seek(Math.floor(this.t) + 1);
      if (event.code === 'ArrowLeft') this.seek(Math.ceil(this.t) - 1);
    });
  }

  async jump(text) {
    const input = this.el.jumpInput;
    const target = parseJump(text, this.frames.timeAt(Math.floor(this.t)));
    input.classList.toggle('invalid', target === null);
    if (target === null) {
      input.title = 'Try 14:30, 2024-02-13 14:30 or #120 (a step)';
      return;
    }
    input.title = '';
    this.setFollow(false);
    if ('step' in target) { this.seek(target.step); return; }
    try {
      const found = await getJSON('/api/seek', { time: target.time });
      this.seek(found.step);
    } catch (error) {
      input.classList.add('invalid');
      input.title = String(error.message || error);
    }
  }

  toggle() {
    this.setPlaying(!this.playing);
  }

  setPlaying(playing) {
    if (playing && this.t >= this.lastStep && !this.follow) this.t = 0;
    this.playing = playing;
    this.el.play.textContent = playing ? '❚❚' : '▶';
    this.el.play.setAttribute('aria-label', playing ? 'Pause' : 'Play');
    this.el.play.classList.toggle('playing', playing);
  }

  setFollow(follow) {
    this.follow = follow;
    this.el.follow.checked = follow;
    if (follow) this.setPlaying(true);
  }

  setLive(live) {
    this.el.followBox.hidden = !live;
    if (!live) this.setFollow(false);
  }

  setLastStep(lastStep) {
    this.lastStep = Math.max(0, lastStep);
    this.frames.setLastStep(this.lastStep);
    this.el.scrubber.max = String(this.lastStep);
    this.render();
  }

  seek(step) {
    this.t = Math.max(0, Math.min(this.lastStep, step));
    this.frames.ensure(Math.floor(this.t)).catch(() => {});
    this.render();
    this.emit();
  }

  /** Advance by `dt` seconds of wall time; waits at chunk edges until frames are loaded. */
  tick(dt) {
    if (!this.playing) return false;
    // Following a live run catches up faster the further behind it is.
    const lag = this.lastStep - this.t;
    const rate = this.follow ? Math.max(this.speed, lag * 1.5) : this.speed;
    let next = Math.min(this.lastStep, this.t + dt * rate);
    const nextStep = Math.min(this.lastStep, Math.floor(next) + 1);
    if (!this.frames.isReady(nextStep)) {
      this.frames.ensure(nextStep).catch(() => {});
      next = Math.min(next, Math.floor(this.t) + 0.999);
      if (!this.frames.isReady(Math.floor(next))) return false;
    }
    this.frames.prefetch(Math.floor(next));
    const changed = next !== this.t;
    this.t = next;
    if (this.t >= this.lastStep && !this.follow) this.setPlaying(false);
    if (changed) { this.render(); this.emit(); }
    return changed;
  }

  emit() {
    for (const fn of this.listeners) fn(this.t);
  }

  render() {
    const step = Math.floor(this.t);
    this.el.scrubber.value = String(step);
    this.el.stepLabel.textContent = `step ${step.toLocaleString('en-US')} / ${this.lastStep.toLocaleString('en-US')}`;
    const time = this.frames.timeAt(step);
    if (time) {
      this.el.clockTime.textContent = formatClock(time);
      this.el.clockDay.textContent = formatDay(time);
    }
  }
}
