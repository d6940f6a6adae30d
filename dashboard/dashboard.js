// The gateway's live hot-key page (GET /dashboard): polls /v1/hotkeys every second and
// draws the hot keys, each master's load and, since the page opened, reads a second and
// the hit ratio as charts (uPlot, served by the gateway itself). A token, when the
// gateway has one, goes in the address's fragment (/dashboard#token=…), which browsers
// never send to the server; it is kept for the tab only.
(() => {
  const HISTORY = 300;
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.has('token')) {
    sessionStorage.setItem('hotshield-token', fragment.get('token'));
    history.replaceState(null, '', location.pathname);
  }
  const token = sessionStorage.getItem('hotshield-token');
  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
  const samples = { t: [], reads: [], misses: [], hit: [] };
  window.hotshieldDashboard = { samples, polls: 0, errors: 0 };

  const chart = (el, series, range) =>
    new uPlot(
      {
        width: 520,
        height: 200,
        series: [{}, ...series],
        scales: range === undefined ? {} : { y: { range } },
        axes: [{}, { size: 60 }],
      },
      [[], ...series.map(() => [])],
      el,
    );
  const readsChart = chart($('chart-reads'), [
    { label: 'reads/s', stroke: '#d94f3d', width: 2 },
    { label: 'misses/s', stroke: '#3d6fd9', width: 1 },
  ]);
  const hitsChart = chart(
    $('chart-hits'),
    [{ label: 'hit %', stroke: '#2e9e5b', width: 2 }],
    [0, 100],
  );

  /** A table row of text cells (textContent: keys are anyone's bytes, never markup). */
  function row(cells) {
    const tr = document.createElement('tr');
    for (const [text, cls] of cells) {
      const td = document.createElement('td');
      if (cls) td.className = cls;
      if (text instanceof Node) td.append(text);
      else td.textContent = text;
      tr.append(td);
    }
    return tr;
  }
  const fill = (table, rows) => $(table).tBodies[0].replaceChildren(...rows);

  function render(r) {
    $('window').textContent =
      `rates a second over the last ${r.windowSeconds} s${r.processes === undefined ? '' : `, ${r.processes} process(es)`}`;
    fill(
      'keys',
      r.keys.map((k) =>
        row([
          [k.key + (k.truncated ? '…' : ''), 'key'],
          [number.format(k.readsPerSecond), 'num'],
          [number.format(k.writesPerSecond), 'num'],
          [k.hitRatio === null ? '–' : (k.hitRatio * 100).toFixed(2), 'num'],
          [String(k.slot), 'num'],
          [k.node ?? '?'],
        ]),
      ),
    );
    const top = Math.max(1, ...r.nodes.map((n) => n.readsPerSecond));
    fill(
      'nodes',
      r.nodes.map((n) => {
        const meter = document.createElement('div');
        meter.className = 'meter';
        meter.style.width = `${(100 * n.readsPerSecond) / top}%`;
        return row([
          [n.node],
          [meter, 'bar'],
          [number.format(n.readsPerSecond), 'num'],
          [number.format(n.missesPerSecond), 'num'],
        ]);
      }),
    );
    fill(
      'counters',
      r.counters.map((c) =>
        row([
          [c.name, 'key'],
          [number.format(c.incrementsPerSecond), 'num'],
        ]),
      ),
    );
    const reads = r.nodes.reduce((a, n) => a + n.readsPerSecond, 0);
    const misses = r.nodes.reduce((a, n) => a + n.missesPerSecond, 0);
    samples.t.push(Date.now() / 1000);
    samples.reads.push(reads);
    samples.misses.push(misses);
    samples.hit.push(reads === 0 ? null : 100 * (1 - misses / reads));
    for (const s of Object.values(samples)) if (s.length > HISTORY) s.shift();
    readsChart.setData([samples.t, samples.reads, samples.misses]);
    hitsChart.setData([samples.t, samples.hit]);
  }

  function status(text, error) {
    const el = $('status');
    el.textContent = text;
    el.classList.toggle('error', error);
  }

  async function poll() {
    const scope = $('scope').value;
    try {
      const res = await fetch(`/v1/hotkeys?limit=20&scope=${scope}`, {
        headers: token === null ? {} : { authorization: `Bearer ${token}` },
        cache: 'no-store',
      });
      if (res.status === 401)
        throw new Error('this gateway needs a token: open /dashboard#token=<token>');
      if (res.status === 403)
        throw new Error('without a token only loopback clients may read hot keys');
      if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
      render(await res.json());
      window.hotshieldDashboard.polls++;
      status(`updated ${new Date().toLocaleTimeString()}`, false);
    } catch (error) {
      window.hotshieldDashboard.errors++;
      status(String(error.message ?? error), true);
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
