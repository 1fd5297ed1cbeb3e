// The live page of one sleap-rtc job (served by the client with --ui). Plain browser JavaScript,
// no build step: uPlot is loaded before this file. Updates arrive as server-sent events.
(() => {
  'use strict';
  const token = document.querySelector('meta[name="sleap-rtc-token"]').content;
  const $ = (id) => document.getElementById(id);
  const history = [];
  let state = null;
  let chart = null;
  const logs = [];
  const MAX_LOG_LINES = 200;

  const fmtLoss = (v) => (v === null || v === undefined ? '-' : v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4) ? v.toExponential(3) : v.toPrecision(4));
  const fmtTime = (s) => {
    if (s === null || s === undefined) return '-';
    const r = Math.round(s);
    if (r < 60) return s < 10 ? `${s.toFixed(1)} s` : `${r} s`;
    const m = Math.floor(r / 60);
    return m < 60 ? `${m} min ${String(r % 60).padStart(2, '0')} s` : `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
  };

  function chartData() {
    return [history.map((r) => r.epoch), history.map((r) => r.train_loss), history.map((r) => r.val_loss)];
  }

  function drawChart() {
    const el = $('chart');
    const data = chartData();
    if (!chart) {
      chart = new uPlot(
        {
          width: Math.max(320, el.clientWidth - 16),
          height: 320,
          scales: { x: { time: false } },
          axes: [{ label: 'epoch' }, { label: 'loss', size: 70 }],
          series: [
            { label: 'epoch' },
            { label: 'train loss', stroke: '#129edc', width: 2, points: { show: true, size: 6 } },
            { label: 'val loss', stroke: '#f8a734', width: 2, points: { show: true, size: 6 } },
          ],
        },
        data,
        el,
      );
      window.addEventListener('resize', () => chart.setSize({ width: Math.max(320, el.clientWidth - 16), height: 320 }));
    } else {
      chart.setData(data);
    }
    el.dataset.points = String(history.length);
  }

  function render() {
    if (!state) return;
    const t = state.training;
    $('job-type').textContent = state.job_type === 'train' ? 'training' : 'inference';
    $('job-id').textContent = state.job_id;
    $('status').textContent = state.status.replace('_', ' ');
    $('status').className = `status ${state.status}`;
    $('worker').textContent = state.worker ?? '-';
    $('backend').textContent = state.storage_backend ?? '(none)';
    $('transfer').textContent = state.transfer === 'shared' ? 'shared storage' : 'WebRTC transfer';
    $('run').textContent = state.run_name ?? '-';
    $('epoch').textContent = `${t.epochs_done} / ${t.total_epochs ?? '?'}`;
    $('train-loss').textContent = fmtLoss(t.train_loss);
    $('val-loss').textContent = fmtLoss(t.val_loss);
    $('best').textContent = t.best ? `${fmtLoss(t.best.val_loss)} (epoch ${t.best.epoch})` : '-';
    $('epoch-time').textContent = fmtTime(t.epoch_seconds);
    $('eta').textContent = fmtTime(t.eta_seconds);
    $('source').textContent =
      t.source === 'zmq' ? "Figures from sleap-nn's progress events." : t.source === 'log' ? "sleap-nn sends no progress events here: epochs are read from its log lines, without losses." : '';
    $('stop-message').textContent = state.stop_message ?? '';
    const stop = $('stop');
    stop.disabled = !(state.job_type === 'train' && state.status === 'running' && t.source === 'zmq');
    stop.textContent = state.status === 'stopping' ? 'Stopping…' : 'Stop training';
    document.title = `sleap-rtc · ${state.status.replace('_', ' ')} · epoch ${t.epochs_done}/${t.total_epochs ?? '?'}`;
  }

  function addLog(line) {
    logs.push(line);
    if (logs.length > MAX_LOG_LINES) logs.splice(0, logs.length - MAX_LOG_LINES);
    const pre = $('logs');
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = logs.join('\n');
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  $('stop').addEventListener('click', async () => {
    $('stop').disabled = true;
    const res = await fetch('api/stop', { method: 'POST', headers: { 'X-Sleap-Rtc-Token': token } });
    const body = await res.json().catch(() => ({}));
    if (res.status !== 202) $('stop-message').textContent = `Stop not sent: ${body.answer ?? res.status}`;
  });

  const events = new EventSource(`api/events?token=${encodeURIComponent(token)}`);
  events.addEventListener('init', (ev) => {
    const init = JSON.parse(ev.data);
    state = init.state;
    history.splice(0, history.length, ...init.state.history);
    logs.splice(0, logs.length);
    for (const l of init.logs) addLog(l);
    render();
    drawChart();
  });
  events.addEventListener('state', (ev) => {
    state = { ...state, ...JSON.parse(ev.data) };
    render();
  });
  events.addEventListener('epoch', (ev) => {
    const rec = JSON.parse(ev.data);
    if (history.at(-1)?.epoch === rec.epoch) history.pop();
    history.push(rec);
    drawChart();
  });
  events.addEventListener('log', (ev) => addLog(JSON.parse(ev.data)));
  window.__sleapRtc = { points: () => history.length, chart: () => chart };
})();
