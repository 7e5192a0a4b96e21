/**
 * The dashboard's page: one HTML document with its CSS and script inline, so
 * it works offline and loads nothing from anywhere (its Content-Security-
 * Policy says so to the browser too). The JSON API (./api.ts) is its only
 * source. It takes the token from `?token=` once, keeps it in the tab's
 * sessionStorage, drops it from the address bar, and sends it as a header.
 */

/** The page, with `nonce` on its one script (the CSP allows only that script). */
export function dashboardPage(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>taskmill dashboard</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1b1f24; background: #f6f8fa; }
  header { background: #24292f; color: #fff; padding: 10px 20px; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  main { padding: 16px 20px; display: grid; grid-template-columns: minmax(0, 1fr); gap: 20px; }
  section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 12px 16px; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  .state { display: inline-block; padding: 0 6px; border-radius: 10px; font-size: 12px; background: #eaeef2; margin: 0 4px 2px 0; }
  .state.busy { background: #ddf4ff; } .state.idle { background: #dafbe1; } .state.retiring { background: #fff8c5; }
  .error { color: #cf222e; white-space: pre-wrap; }
  button.link { border: 0; background: none; padding: 0; color: #0969da; text-decoration: underline; }
  .spark-total { font-size: 12px; opacity: .8; margin-left: 6px; }
  #status { margin-left: auto; font-size: 12px; opacity: .8; }
  button { font: inherit; cursor: pointer; }
  pre { background: #f6f8fa; padding: 8px; overflow: auto; margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
  #job dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 4px 16px; margin: 8px 0 0; }
  #job dt { font-weight: 600; } #job dd { margin: 0; }
  #machines { display: flex; flex-wrap: wrap; gap: 16px; }
  svg text { font: 12px system-ui, sans-serif; }
  svg .node rect { fill: #fff; stroke: #57606a; }
  svg .node.live rect { fill: #ddf4ff; stroke: #0969da; stroke-width: 2; }
  svg .edge { stroke: #8c959f; fill: none; marker-end: url(#arrow); }
</style>
</head>
<body>
<header><h1>taskmill</h1><span id="queues-names"></span><span id="status">loading…</span></header>
<main>
  <section><h2>Queues</h2>
    <table id="queues"><thead><tr><th>queue</th><th>ready</th><th>running</th><th>delayed</th><th>failed</th><th>done / s</th><th>jobs per minute, the last hour</th></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Consumers</h2>
    <table id="consumers"><thead><tr><th>consumer</th><th>host, pid</th><th>queues</th><th>supervisor</th><th>reader</th><th>scheduler</th><th>workers</th><th>seen</th></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Machines <small>(the number in a state: how many live actors are in it now)</small></h2>
    <div id="machines"></div>
  </section>
  <section><h2>Failed jobs <button id="retry-all" type="button">retry all</button></h2>
    <table id="failed"><thead><tr><th>command</th><th>job</th><th>error</th><th>attempts</th><th>failed at</th><th></th></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>A job</h2>
    <form id="job-form"><input id="job-id" placeholder="job id" size="40"> <button type="submit">show</button></form>
    <div id="job"></div>
  </section>
</main>
<script nonce="${nonce}">
(() => {
  const params = new URLSearchParams(location.search);
  if (params.has('token')) {
    sessionStorage.setItem('taskmill-token', params.get('token'));
    params.delete('token');
    history.replaceState(null, '', location.pathname + (params.size ? '?' + params : ''));
  }
  const token = sessionStorage.getItem('taskmill-token') || '';
  const base = location.pathname.replace(/\\/[^/]*$/, '');
  const api = async (path, init = {}) => {
    const res = await fetch(base + path, { ...init, headers: { ...(init.headers || {}), authorization: 'Bearer ' + token, 'content-type': 'application/json' } });
    if (res.status === 401 || res.status === 403) throw new Error('the token is missing or wrong: open the URL taskmill dashboard printed');
    if (!res.ok) throw new Error((await res.json()).error || res.statusText);
    return res.json();
  };
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; };
  const row = (cells) => { const tr = el('tr'); for (const c of cells) tr.append(c instanceof Node ? c : el('td', c)); return tr; };
  const num = (n) => el('td', n, 'n');
  const fill = (id, rows) => document.querySelector('#' + id + ' tbody').replaceChildren(...rows);
  const NS = 'http://www.w3.org/2000/svg';
  const svgEl = (tag, attrs, text) => { const e = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v)); if (text !== undefined) e.textContent = String(text); return e; };
  let graphs = null;
  /** Each machine's states on a circle, its transitions as arrows; a state with live actors is marked with their number. */
  function drawMachines(live) {
    const box = document.getElementById('machines');
    box.replaceChildren(...graphs.map((g) => {
      const W = 460, H = 360, R = 130, cx = W / 2, cy = H / 2;
      const at = new Map(g.states.map((s, i) => [s.id, { x: cx + R * Math.cos((2 * Math.PI * i) / g.states.length - Math.PI / 2), y: cy + R * Math.sin((2 * Math.PI * i) / g.states.length - Math.PI / 2) }]));
      const svg = svgEl('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, 'data-machine': g.name, role: 'img', 'aria-label': g.name + ' machine' });
      const defs = svgEl('defs', {});
      const marker = svgEl('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' });
      marker.append(svgEl('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#8c959f' }));
      defs.append(marker);
      svg.append(defs, svgEl('text', { x: 8, y: 16, 'font-weight': 'bold' }, g.name));
      for (const e of g.edges) {
        const a = at.get(e.from), b = at.get(e.to);
        const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1, k = 34 / len;
        const line = svgEl('line', { class: 'edge', x1: a.x + dx * k, y1: a.y + dy * k, x2: b.x - dx * k, y2: b.y - dy * k });
        line.append(svgEl('title', {}, e.from + ' → ' + e.to + ': ' + e.events.join(', ')));
        svg.append(line);
      }
      for (const s of g.states) {
        const p = at.get(s.id), n = live[g.name][s.id] || 0;
        const group = svgEl('g', { class: 'node' + (n > 0 ? ' live' : ''), 'data-state': s.id, 'data-live': n });
        group.append(svgEl('rect', { x: p.x - 42, y: p.y - 14, width: 84, height: 28, rx: s.final ? 2 : 14 }));
        group.append(svgEl('text', { x: p.x, y: p.y + 4, 'text-anchor': 'middle' }, n > 0 ? s.id + ' ×' + n : s.id));
        svg.append(group);
      }
      return svg;
    }));
  }
  /**
   * Per queue: the jobs settled each minute of the last hour, as the consumers' heartbeats
   * reported them to the backend (so a page opened now shows the past too): completed in
   * blue, failed stacked on it in red. Asked for every 10 s (the counts land every 5 s).
   */
  let hourly = null, hourlyAt = 0;
  function sparkline(name) {
    const W = 180, H = 28, td = el('td');
    if (!hourly) return td;
    const q = hourly.queues.find((h) => h.name === name);
    const minutes = Math.round((hourly.to - hourly.from) / hourly.bucketMs) + 1;
    const byMinute = new Map((q ? q.buckets : []).map((b) => [b.minute, b]));
    let max = 1, done = 0, failed = 0;
    for (const b of byMinute.values()) { max = Math.max(max, b.completed + b.failed); done += b.completed; failed += b.failed; }
    const svg = svgEl('svg', { width: W, height: H, class: 'spark', 'data-completed': done, 'data-failed': failed });
    const w = W / minutes;
    for (let i = 0; i < minutes; i++) {
      const minute = hourly.from + i * hourly.bucketMs, b = byMinute.get(minute);
      if (!b) continue;
      const hc = ((H - 2) * b.completed) / max, hf = ((H - 2) * b.failed) / max;
      const bar = svgEl('g', { 'data-minute': minute });
      bar.append(svgEl('rect', { x: i * w, y: H - hc, width: Math.max(1, w - 0.5), height: hc, fill: '#0969da' }));
      if (hf > 0) bar.append(svgEl('rect', { x: i * w, y: H - hc - hf, width: Math.max(1, w - 0.5), height: hf, fill: '#cf222e' }));
      bar.append(svgEl('title', {}, new Date(minute).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) + ': ' + b.completed + ' done, ' + b.failed + ' failed'));
      svg.append(bar);
    }
    svg.append(svgEl('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, stroke: '#d0d7de' }));
    td.append(svg, el('span', done + ' done' + (failed ? ', ' + failed + ' failed' : ''), 'spark-total'));
    return td;
  }
  const showJob = async (id) => {
    document.getElementById('job-id').value = id;
    const box = document.getElementById('job');
    try { box.replaceChildren(jobView(await api('/api/jobs/' + encodeURIComponent(id)))); }
    catch (e) { box.replaceChildren(el('p', e.message, 'error')); }
  };
  /** A job's page: its record, and its arguments while the backend holds its message (the API says where they came from). */
  function jobView(j) {
    const dl = el('dl');
    const item = (name, value) => { const dd = el('dd'); dd.append(value instanceof Node ? value : String(value)); dl.append(el('dt', name), dd); };
    const json = (v) => el('pre', JSON.stringify(v, null, 2));
    item('job', j.id + ' (queue ' + j.queue + ')');
    item('status', j.status);
    if (j.command) item('command', j.command);
    item('arguments', j.argsFrom ? json(j.args) : el('span', 'not shown: they leave the backend with the message (once the job is acked)'));
    const from = { running: () => 'the heartbeat of ' + j.worker.consumer + ', ' + j.worker.id, 'failed store': () => 'the failed store', waiting: () => 'the waiting message', delayed: () => 'the delayed message' };
    if (j.argsFrom) item('arguments from', from[j.argsFrom]());
    if (j.attempt !== null) item('attempt', j.attempt);
    if (j.at) item('at', new Date(j.at).toLocaleString());
    if (j.error) {
      const e = typeof j.error === 'string' ? { message: j.error } : j.error;
      const text = typeof j.error === 'string' ? j.error : (e.name ? e.name + ': ' : '') + e.message;
      const details = el('details'); details.append(el('summary', text.split('\\n')[0], 'error'), el('pre', e.stack || text));
      item('error', details);
    }
    if (j.result !== null) item('result', json(j.result));
    if (j.progress !== null) item('progress', json(j.progress));
    return dl;
  }
  const jobLink = (id, text) => { const b = el('button', text ?? id, 'link'); b.type = 'button'; b.dataset.job = id; b.onclick = () => showJob(id); return b; };
  let last = null;
  async function refresh() {
    const [queues, consumers, failed] = await Promise.all([api('/api/queues'), api('/api/consumers'), api('/api/failed')]);
    const now = Date.now();
    if (now - hourlyAt >= 10000) { hourly = await api('/api/throughput'); hourlyAt = now; }
    document.getElementById('queues-names').textContent = queues.map((q) => q.name).join(', ');
    fill('queues', queues.map((q) => {
      const prev = last && last.queues.find((p) => p.name === q.name);
      const gone = prev ? (prev.ready + prev.leased + prev.delayed) - (q.ready + q.leased + q.delayed) : 0;
      const rate = prev && gone > 0 ? (gone / ((now - last.at) / 1000)).toFixed(1) : '–';
      return row([q.name, num(q.ready), num(q.leased), num(q.delayed), num(q.failed), num(rate), sparkline(q.name)]);
    }));
    last = { at: now, queues };
    fill('consumers', consumers.map((c) => {
      const workers = el('td');
      for (const w of c.workers) {
        const tag = el('span', w.id + ': ' + w.state, 'state ' + w.state);
        // A running job: its id opens its page (with its arguments, as the heartbeat carries them).
        if (w.running && w.running.id) tag.append(' ', jobLink(w.running.id, (w.running.command || 'job') + ' ' + w.running.id));
        workers.append(tag);
      }
      return row([c.id, c.hostname + ', ' + c.pid, c.queues.join(', '), el('td', c.supervisor), el('td', c.reader ?? '–'), el('td', c.scheduler ?? '–'), workers, Math.round((now - c.seenAt) / 1000) + ' s ago']);
    }));
    fill('failed', failed.map((f) => {
      const actions = el('td');
      const retry = el('button', 'retry'); retry.type = 'button'; retry.dataset.retry = f.id;
      retry.onclick = () => act('/api/failed/retry', { queue: f.queue, ids: [f.id] });
      const purge = el('button', 'purge'); purge.type = 'button';
      purge.onclick = () => act('/api/failed/purge', { queue: f.queue, ids: [f.id] });
      actions.append(retry, ' ', purge);
      // The first line here; the whole error (its stack) on hover and on the job's page.
      const error = el('td', f.error.split('\\n')[0], 'error');
      error.title = f.error;
      const job = el('td'); job.append(f.jobId ? jobLink(f.jobId) : f.id);
      return row([f.command ?? '(not a taskmill job)', job, error, num(f.attempt), new Date(f.failedAt).toLocaleString(), actions]);
    }));
    graphs ??= await api('/api/machines');
    const live = Object.fromEntries(graphs.map((g) => [g.name, {}]));
    const count = (machine, state) => { if (state != null && live[machine]) live[machine][state] = (live[machine][state] || 0) + 1; };
    for (const c of consumers) {
      count('supervisor', c.supervisor);
      count('reader', c.reader);
      count('scheduler', c.scheduler);
      for (const w of c.workers) count('worker', w.state);
    }
    drawMachines(live);
    document.getElementById('status').textContent = 'updated ' + new Date(now).toLocaleTimeString();
  }
  async function act(path, body) {
    try { await api(path, { method: 'POST', body: JSON.stringify(body) }); await refresh(); }
    catch (e) { document.getElementById('status').textContent = e.message; }
  }
  document.getElementById('retry-all').onclick = () => act('/api/failed/retry', {});
  document.getElementById('job-form').onsubmit = async (event) => {
    event.preventDefault();
    await showJob(document.getElementById('job-id').value.trim());
  };
  const loop = () => refresh().catch((e) => { document.getElementById('status').textContent = e.message; }).finally(() => setTimeout(loop, 2000));
  loop();
})();
</script>
</body>
</html>
`;
}
