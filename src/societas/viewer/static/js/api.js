// The viewer's JSON API, one fetch helper per call site.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** GET a JSON endpoint; parameters that are null, undefined or '' are left out. */
export async function getJSON(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, String(value));
  }
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!response.ok) {
    let message = response.statusText;
    try {
      const body = await response.json();
      message = body.error || (typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail));
    } catch (_) { /* not JSON: keep the status text */ }
    throw new ApiError(`${response.status} ${message}`, response.status);
  }
  return response.json();
}

export function agentPath(name, sub = '') {
  return `/api/agents/${encodeURIComponent(name)}${sub}`;
}
