extension LivePage {
    /// The page: the picture, live; the table beneath. Plain HTML and
    /// JavaScript, nothing fetched from elsewhere. It comes with the
    /// picture and a first snapshot in it, drawn as the page loads; the
    /// events then keep it live.
    static func page(name: String, svg: String, snapshots: [String]) -> String {
        let picture = svg.range(of: "<svg").map { String(svg[$0.lowerBound...]) } ?? svg   // without the XML prologue
        let inline = "[" + snapshots.joined(separator: ",").replacingOccurrences(of: "</", with: "<\\/") + "]"
        let title = name.replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: "&", with: "&amp;")
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>qgraph: \(title)</title>
        <style>
          body { font: 14px Helvetica, Arial, sans-serif; margin: 16px; color: #212529; }
          h1 { font-size: 18px; margin: 0 0 8px; } #status { color: #6c757d; font-size: 12px; }
          #graph svg { max-width: 100%; height: auto; }
          table { border-collapse: collapse; margin-top: 12px; } th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #dee2e6; }
          th:first-child, td:first-child { text-align: left; } th { background: #f1f3f5; }
        </style></head>
        <body>
        <h1>qgraph: \(title)</h1><div id="status">connecting…</div>
        <div id="graph">\(picture)</div>
        <table id="queues"><thead><tr><th>queue</th><th>thread</th><th>depth/size</th><th>in/s</th><th>out/s</th><th>dropped</th><th>late</th><th>residency</th></tr></thead><tbody></tbody></table>
        <script>
        let shape = null, previous = null;
        const first = \(inline);   // snapshots taken as the page was served
        const fmt = (x) => x >= 100 ? Math.round(x).toString() : x.toFixed(1);
        const duration = (ns) => ns >= 1e6 ? (ns / 1e6).toFixed(1) + ' ms' : ns >= 1e3 ? (ns / 1e3).toFixed(0) + ' µs' : ns + ' ns';
        function loadPicture() {
          fetch('/graph.svg').then(r => r.text()).then(svg => { document.getElementById('graph').innerHTML = svg; if (previous) draw(previous.now, previous.rates); });
        }
        function fill(share) {   // green when empty, yellow half full, red when full
          const hue = 120 * (1 - Math.min(1, share));
          return `hsl(${hue}, 70%, 80%)`;
        }
        function draw(now, rates) {
          for (const q of now.queues) {
            const node = document.getElementById('queue-' + q.name);
            if (!node) continue;
            const size = now.sizes[q.name] || 1, r = rates[q.name] || {in: 0, out: 0};
            const shapeElement = node.querySelector('path, polygon');
            if (shapeElement) shapeElement.setAttribute('fill', fill(q.depth / size));
            const texts = node.querySelectorAll('text');
            const drops = Object.values(q.dropped).reduce((a, b) => a + b, 0);
            if (texts.length > 2) {
              texts[1].textContent = `${q.depth}/${size} · ${fmt(r.out)}/s`;
              texts[2].textContent = drops ? `${drops} dropped` : '';
            }
          }
        }
        function table(now, rates) {
          const body = document.querySelector('#queues tbody');
          body.innerHTML = '';
          for (const q of now.queues) {
            const r = rates[q.name] || {in: 0, out: 0};
            const drops = Object.entries(q.dropped).map(([k, v]) => `${v} ${k}`).join(', ') || '0';
            const row = document.createElement('tr');
            row.innerHTML = `<td>${q.name}</td><td>${q.thread}</td><td>${q.depth}/${now.sizes[q.name] ?? '–'}</td><td>${fmt(r.in)}</td><td>${fmt(r.out)}</td><td>${drops}</td><td>${q.dropped.late || 0}</td><td>${duration(q.residency_mean_ns)}</td>`;
            body.appendChild(row);
          }
        }
        function show(now) {
          const rates = {};
          for (const q of now.queues) {
            const before = previous && previous.now.queues.find(p => p.name === q.name);
            const dt = previous ? now.time - previous.now.time : 0;
            rates[q.name] = before && dt > 0 ? {in: (q.arrived - before.arrived) / dt, out: ((q.sent ?? q.popped) - (before.sent ?? before.popped)) / dt} : {in: 0, out: 0};   // a source pops nothing: its out is what it sent
          }
          if (now.shape !== shape) { shape = now.shape; loadPicture(); }
          previous = {now, rates};
          draw(now, rates);
          table(now, rates);
          document.getElementById('status').textContent = `live · ${new Date(now.time * 1000).toLocaleTimeString()} · ${now.queues.length} queues`;
        }
        shape = first[0].shape;
        first.forEach(show);
        const events = new EventSource('/events');
        events.onmessage = (message) => show(JSON.parse(message.data));
        events.onerror = () => { document.getElementById('status').textContent = 'disconnected (the graph ended?)'; };
        </script>
        </body></html>
        """
    }
}
