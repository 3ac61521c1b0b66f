'use strict';
// A notification feed with replay: every client of /feed gets each notification, and a client
// that reconnects gets exactly the ones it missed (EventSource sends Last-Event-ID by itself).
//
//   node examples/chat.js                       then open http://127.0.0.1:3000/
//   curl -N http://127.0.0.1:3000/feed
//   curl -d '{"from":"ann","text":"hi"}' http://127.0.0.1:3000/notify
const { Server, Channel } = require('..'); // in your app: require('hyper-sse')

const app = new Server();
// Keeps the last 500 events for replay. Ids are assigned by the channel: '1', '2', '3', ...
const feed = new Channel({ history: 500 });

app.get('/feed', (req, res) => {
  // Replays after the Last-Event-ID header (or ?last_event_id= on a first connect), then live.
  // An id the channel no longer has gets an `event: replay-unavailable` first, then the history.
  feed.subscribe(res.sse);
});

app.post('/notify', async (req, res) => {
  const { from = 'anonymous', text } = await req.json();
  if (typeof text !== 'string' || text === '') return res.status(400).json({ error: 'text is required' });
  const id = feed.send('notification', JSON.stringify({ from: String(from), text, at: Date.now() }));
  res.status(201).json({ id, subscribers: feed.size });
});

app.get('/', (req, res) => {
  res.html(`<!doctype html><meta charset="utf-8"><title>feed</title>
<form onsubmit="event.preventDefault(); fetch('/notify', { method: 'POST',
  body: JSON.stringify({ text: this.text.value }) }); this.text.value = ''">
  <input name="text" placeholder="notify everyone" autofocus> <button>send</button></form>
<ul id="list"></ul>
<script>
  new EventSource('/feed').addEventListener('notification', (e) => {
    const li = document.createElement('li');
    li.textContent = '#' + e.lastEventId + ' ' + JSON.parse(e.data).text;
    document.getElementById('list').append(li);
  });
</script>`);
});

// Graceful stop: every open stream ends with finish + close, then the process exits.
process.on('SIGTERM', () => app.shutdown(5000));

const host = process.env.HOST || '127.0.0.1';
app.listen(Number(process.env.PORT ?? 3000), host).then(() => {
  console.log(`notification feed on http://${host}:${app.port}/`);
});
