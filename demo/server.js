'use strict';
/**
 * The hyper-sse live demo (`npm start`).
 *
 * A page whose EventSource shows, live: a ticker from a Channel, messages posted from the page,
 * the number of connected clients, and every disconnect as the server sees it (`abort`, `close`
 * and `res.close_reason`). Open a second tab, close it, and watch the first one.
 *
 * Uses only the package's public API, exactly as an application would.
 *
 *   node demo/server.js [--port 8080] [--host 127.0.0.1]     (or PORT=... HOST=... env vars)
 */
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { parseArgs } = require('node:util');
const { Server, Channel } = require('..');

const { values: args } = parseArgs({
  options: { port: { type: 'string' }, host: { type: 'string' } },
});
const HOST = args.host || process.env.HOST || '127.0.0.1';
const PORT = Number(args.port ?? process.env.PORT ?? 8080);
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) {
  console.error(`demo: invalid port ${args.port ?? process.env.PORT}`);
  process.exit(2);
}

const PAGE = fs.readFileSync(path.join(__dirname, 'index.html'), 'utf8');

const app = new Server({ sse_heartbeat: 10000 });

// One feed for everybody; the last 100 events are kept so that a reconnecting EventSource
// (which sends Last-Event-ID by itself) gets exactly what it missed.
const feed = new Channel({ history: 100 });

// The classic Hyper-Express connection pool: key each stream by an id stored on res.sse.
const clients = new Map();

function broadcast(event, payload) {
  feed.send(event, JSON.stringify(payload));
}

app.get('/', (req, res) => {
  res.type('html').send(PAGE);
});

app.get('/events', (req, res) => {
  const client = {
    id: crypto.randomUUID().slice(0, 8),
    ip: req.ip,
    since: Date.now(),
    events: [],
  };
  res.sse.id = client.id;
  clients.set(client.id, client);

  // These are the events Hyper-Express 6.0-6.14.9 never emitted for an SSE client that left.
  res.once('abort', () => client.events.push('abort'));
  res.once('close', () => {
    client.events.push('close');
    clients.delete(client.id);
    broadcast('left', {
      client: client.id,
      events: client.events,
      reason: res.close_reason,
      seconds: Math.round((Date.now() - client.since) / 100) / 10,
      clients: clients.size,
    });
  });

  res.sse.retry(2000);
  res.sse.send('hello', JSON.stringify({ client: client.id }));
  feed.subscribe(res.sse);
  broadcast('joined', { client: client.id, clients: clients.size });
});

app.post('/messages', async (req, res) => {
  const body = await req.json(null);
  const text = body && typeof body.text === 'string' ? body.text.trim().slice(0, 500) : '';
  if (text === '') return res.status(400).json({ error: 'expected a JSON body {"text": "..."}' });
  const from = body && typeof body.from === 'string' ? body.from.slice(0, 40) : 'anonymous';
  const id = feed.send('message', JSON.stringify({ from, text, at: new Date().toISOString() }));
  res.status(201).json({ id });
});

app.get('/stats', (req, res) => {
  res.json({
    clients: clients.size,
    subscribers: feed.size,
    pool: Array.from(clients.values(), (c) => ({ client: c.id, ip: c.ip, since: new Date(c.since).toISOString() })),
  });
});

let tick = 0;
const ticker = setInterval(() => {
  tick += 1;
  broadcast('tick', { n: tick, time: new Date().toISOString(), clients: clients.size });
}, 1000);

app
  .listen(PORT, HOST)
  .then(() => {
    const shown = HOST.includes(':') ? `[${HOST}]` : HOST;
    console.log(`hyper-sse demo listening on http://${shown}:${app.port}/`);
    console.log('Open it in two tabs, close one, and watch the other. Ctrl+C to stop.');
  })
  .catch((reason) => {
    console.error(`demo: ${reason}`);
    clearInterval(ticker);
    process.exitCode = 1;
  });

let stopping = false;
function stop(signal) {
  if (stopping) {
    // Second signal: stop waiting.
    app.force_close();
    return;
  }
  stopping = true;
  console.log(`${signal}: shutting down (every open stream ends with finish + close)`);
  clearInterval(ticker);
  app.shutdown(2000).then(
    () => {
      console.log('demo stopped');
      // Nothing else is left: the process exits by itself. If something still held it open,
      // say so instead of hanging.
      setTimeout(() => {
        console.error('demo: the process did not exit by itself after shutdown()');
        process.exit(1);
      }, 3000).unref();
    },
    (err) => {
      console.error('demo: shutdown failed', err);
      process.exit(1);
    }
  );
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
