// The agent panel: persona, today's plan with the current block, memories with importance,
// conversations and relationships, all as of the step being viewed; one search box filters it.

import { agentPath, getJSON } from './api.js';
import { agentColor, debounce, el, formatClock, formatDay, throttle, toast } from './util.js';

const MEMORY_PAGE = 30;
const CONVERSATION_PAGE = 8;

function matches(query, ...texts) {
  if (!query) return true;
  const q = query.toLowerCase();
  return texts.some((text) => String(text || '').toLowerCase().includes(q));
}

// Sections the user folded stay folded when the panel refreshes.
const folded = new Set();

function section(title, body, extra = null) {
  const box = el('details', { class: 'section', open: !folded.has(title) },
    el('summary', {}, el('span', { text: title }), extra), body);
  box.addEventListener('toggle', () => { if (box.open) folded.delete(title); else folded.add(title); });
  return box;
}

// Plan times are 'HH:MM' or ISO datetimes.
function planClock(value) {
  const text = String(value || '');
  if (/^\d{1,2}:\d{2}/.test(text)) return text.slice(0, text.indexOf(':') + 3);
  const clock = formatClock(text);
  return clock === '--:--' ? text : clock;
}

function importanceClass(value) {
  if (value === null || value === undefined) return 'imp-none';
  if (value >= 7) return 'imp-high';
  if (value >= 4) return 'imp-mid';
  return 'imp-low';
}

export class AgentPanel {
  constructor(root, { onFocus }) {
    this.root = root;
    this.onFocus = onFocus;
    this.name = null;
    this.step = -1;
    this.query = '';
    this.request = 0;
    this.refresh = throttle((step) => this.load(step), 900);
    this.searchLater = debounce(() => this.load(this.step), 250);
    this.showEmpty();
  }

  showEmpty() {
    this.root.replaceChildren(el('p', { class: 'empty', text: 'Click an agent on the map or in the list to see their persona, plan, memories and conversations.' }));
  }

  setAgent(name, step) {
    this.name = name;
    this.query = '';
    this.memoryCursor = null;
    this.conversationCursor = null;
    if (!name) { this.showEmpty(); return; }
    this.root.replaceChildren(el('p', { class: 'empty', text: `Loading ${name}…` }));
    this.load(Math.floor(step));
  }

  setStep(step) {
    if (this.name && Math.floor(step) !== this.step) this.refresh(Math.floor(step));
  }

  async load(step) {
    const name = this.name;
    if (!name) return;
    const id = ++this.request;
    try {
      const [detail, memories, conversations] = await Promise.all([
        getJSON(agentPath(name), { step }),
        getJSON(agentPath(name, '/memories'), { step, limit: MEMORY_PAGE, q: this.query }),
        getJSON(agentPath(name, '/conversations'), { step, limit: CONVERSATION_PAGE }),
      ]);
      if (id !== this.request || name !== this.name) return;
      this.step = step;
      this.render(detail, memories, conversations);
    } catch (error) {
      if (id === this.request) toast(`Agent panel: ${error.message}`);
    }
  }

  render(detail, memories, conversations) {
    const hadFocus = document.activeElement && document.activeElement.id === 'agent-search';
    const search = el('input', {
      id: 'agent-search', type: 'search', class: 'search', value: this.query,
      placeholder: 'Search plan, memories, conversations…', 'aria-label': 'Search this agent',
    });
    search.addEventListener('input', () => { this.query = search.value.trim(); this.searchLater(); });
    this.root.replaceChildren(
      this.renderHead(detail),
      search,
      section('Persona', this.renderPersona(detail.persona)),
      section('Plan', this.renderPlan(detail.plan), el('span', { class: 'muted', text: detail.plan.date || '' })),
      section('Memories', this.renderMemories(memories)),
      section('Conversations', this.renderConversations(conversations)),
      section('Relationships', this.renderRelationships(detail.relationships)),
    );
    if (hadFocus) { search.focus(); search.setSelectionRange(search.value.length, search.value.length); }
  }

  renderHead(detail) {
    const persona = detail.persona || {};
    const action = detail.action;
    const facts = [persona.age !== undefined ? `${persona.age}` : null, persona.occupation].filter(Boolean).join(' · ');
    const dot = el('span', { class: 'dot big', 'aria-hidden': 'true' });
    dot.style.background = agentColor(detail.name);
    return el('div', { class: 'agent-head' },
      el('div', { class: 'agent-title' },
        dot,
        el('div', {}, el('h2', { text: detail.name }), el('div', { class: 'muted', text: facts })),
        el('button', { class: 'ghost', text: 'Find on map', onclick: () => this.onFocus(detail.name) })),
      el('div', { class: 'now' },
        el('span', { class: 'emoji', text: action ? action.emoji || '•' : '•' }),
        el('div', {},
          el('div', { class: 'now-action', text: action ? action.description : 'No action yet' }),
          el('div', { class: 'muted', text: [detail.place, detail.time ? `${formatDay(detail.time)} ${formatClock(detail.time)}` : ''].filter(Boolean).join(' — ') }))),
    );
  }

  renderPersona(persona) {
    const traits = Array.isArray(persona.traits) ? persona.traits : [];
    const rows = [['Lifestyle', persona.lifestyle], ['Currently', persona.situation], ['Background', persona.background]]
      .filter(([, value]) => value);
    const demographics = persona.demographics && typeof persona.demographics === 'object'
      ? Object.entries(persona.demographics) : [];
    return el('div', { class: 'persona' },
      traits.length ? el('div', { class: 'chips' }, traits.map((t) => el('span', { class: 'chip', text: t }))) : null,
      el('dl', {}, [...rows, ...demographics].map(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })])));
  }

  renderPlan(plan) {
    if (!plan.blocks.length) return el('p', { class: 'muted', text: 'No plan yet.' });
    const items = plan.blocks.map((block, index) => ({ block, index }))
      .filter(({ block }) => matches(this.query, block.activity, block.place));
    if (!items.length) return el('p', { class: 'muted', text: 'No plan item matches.' });
    return el('ol', { class: 'plan' }, items.map(({ block, index }) => el('li', {
      class: index === plan.current ? 'current' : (plan.current !== null && index < plan.current ? 'done' : ''),
    },
    el('span', { class: 'plan-time', text: `${planClock(block.start)}–${planClock(block.end)}` }),
    el('span', { class: 'plan-what' }, el('span', { text: block.activity || '' }),
      el('span', { class: 'muted', text: block.place ? ` @ ${block.place}` : '' })),
    index === plan.current ? el('span', { class: 'now-tag', text: 'now' }) : null)));
  }

  renderMemories(page) {
    const list = el('ul', { class: 'memories' });
    const add = (memories) => {
      for (const m of memories) {
        const importance = m.importance === null ? null : Number(m.importance);
        const bar = el('span', { class: 'bar-fill' });
        bar.style.width = `${Math.max(0, Math.min(10, importance || 0)) * 10}%`;
        list.append(el('li', { class: `memory kind-${m.kind}` },
          el('div', { class: 'memory-head' },
            el('span', { class: 'tag', text: m.kind }),
            el('span', { class: `importance ${importanceClass(importance)}`, title: 'importance (1–10)', text: importance === null ? '–' : `★ ${importance}` }),
            el('span', { class: 'when', text: formatClock(m.time) })),
          el('div', { class: 'memory-text', text: m.text }),
          el('div', { class: 'bar' }, bar)));
      }
    };
    add(page.memories);
    const wrap = el('div', {}, list);
    if (!page.memories.length) wrap.append(el('p', { class: 'muted', text: this.query ? 'No memory matches.' : 'No memories yet.' }));
    let cursor = page.next_before_id;
    if (cursor) {
      const more = el('button', { class: 'ghost more', text: 'Older memories' });
      more.addEventListener('click', async () => {
        const next = await getJSON(agentPath(this.name, '/memories'),
          { step: this.step, limit: MEMORY_PAGE, q: this.query, before_id: cursor });
        add(next.memories);
        cursor = next.next_before_id;
        if (!cursor) more.remove();
      });
      wrap.append(more);
    }
    return wrap;
  }

  renderConversations(page) {
    const box = el('div', { class: 'conversations' });
    const add = (conversations) => {
      for (const c of conversations) {
        const texts = c.utterances.map((u) => u.text);
        if (!matches(this.query, c.summary, c.place, ...c.participants, ...texts)) continue;
        box.append(el('article', { class: `conversation${c.ongoing ? ' ongoing' : ''}` },
          el('header', {},
            el('span', { class: 'when', text: formatClock(c.time) }),
            el('span', { class: 'who', text: c.participants.join(', ') }),
            c.ongoing ? el('span', { class: 'now-tag', text: 'ongoing' }) : null),
          c.summary ? el('p', { class: 'summary', text: c.summary }) : null,
          el('ul', { class: 'utterances' }, c.utterances.map((u) => {
            const who = el('span', { class: 'speaker', text: `${u.speaker}: ` });
            who.style.color = agentColor(u.speaker);
            return el('li', {}, who, el('span', { text: u.text }));
          }))));
      }
    };
    add(page.conversations);
    if (!box.childElementCount) box.append(el('p', { class: 'muted', text: this.query ? 'No conversation matches.' : 'No conversations yet.' }));
    let cursor = page.next_before_id;
    if (cursor) {
      const more = el('button', { class: 'ghost more', text: 'Older conversations' });
      more.addEventListener('click', async () => {
        const next = await getJSON(agentPath(this.name, '/conversations'),
          { step: this.step, limit: CONVERSATION_PAGE, before_id: cursor });
        more.remove();
        add(next.conversations);
        cursor = next.next_before_id;
        if (cursor) box.append(more);
      });
      box.append(more);
    }
    return box;
  }

  renderRelationships(relationships) {
    const shown = relationships.filter((r) => matches(this.query, r.other, r.summary));
    if (!shown.length) return el('p', { class: 'muted', text: 'None recorded yet.' });
    return el('ul', { class: 'relationships' }, shown.map((r) => {
      const dot = el('span', { class: 'dot' });
      dot.style.background = agentColor(r.other);
      return el('li', {}, dot, el('strong', { text: r.other }), el('span', { text: ` — ${r.summary}` }));
    }));
  }
}
