'use strict';
// A plain Hyper-Express-style app: a Router with middleware, JSON REST routes, error and
// not-found handlers, and an SSE route that pushes every change to a pool of open streams.
// It uses only the Hyper-Express API (no hyper-sse extensions).
//
//   curl -N http://127.0.0.1:3000/api/events
//   curl -d '{"title":"write docs"}' http://127.0.0.1:3000/api/todos
const crypto = require('node:crypto');
const { Server, Router } = require('..'); // in your app: require('hyper-sse')

const app = new Server();
const api = new Router();
const todos = new Map();
let nextId = 1;

// The usual connection pool, keyed by an id the app stores on res.sse.
const streams = new Map();
function publish(event, todo) {
  for (const sse of streams.values()) sse.send(event, JSON.stringify(todo));
}

// Middleware: a response-time header, added while headers can still change.
app.use((req, res, next) => {
  const start = process.hrtime.bigint();
  res.once('prepare', () => res.header('x-response-time', `${(process.hrtime.bigint() - start) / 1000n}us`));
  next();
});

// Async middleware: parse JSON bodies; resolving continues the chain.
api.use(async (req) => {
  if (req.method === 'POST' || req.method === 'PATCH') req.body = await req.json(null);
});

api.get('/todos', (req, res) => res.json([...todos.values()]));

api.get('/todos/:id', (req, res) => {
  const todo = todos.get(Number(req.params.id));
  if (!todo) return res.status(404).json({ error: 'no such todo' });
  res.json(todo);
});

api.post('/todos', (req, res) => {
  if (!req.body || typeof req.body.title !== 'string') return res.status(400).json({ error: 'title is required' });
  const todo = { id: nextId++, title: req.body.title, done: false };
  todos.set(todo.id, todo);
  publish('created', todo);
  res.status(201).json(todo);
});

api.patch('/todos/:id', (req, res) => {
  const todo = todos.get(Number(req.params.id));
  if (!todo) return res.status(404).json({ error: 'no such todo' });
  Object.assign(todo, { done: Boolean(req.body && req.body.done) });
  publish('updated', todo);
  res.json(todo);
});

api.delete('/todos/:id', (req, res) => {
  const todo = todos.get(Number(req.params.id));
  if (!todo) return res.status(404).json({ error: 'no such todo' });
  todos.delete(todo.id);
  publish('deleted', todo);
  res.status(204).send();
});

api.get('/events', (req, res) => {
  res.sse.id = crypto.randomUUID();
  streams.set(res.sse.id, res.sse);
  // Fires exactly once however the stream ends (client gone, dead peer, shutdown, ...).
  res.once('close', () => streams.delete(res.sse.id));
  res.sse.open();
});

app.use('/api', api);
app.set_error_handler((req, res, error) => res.status(500).json({ error: error.message }));
app.set_not_found_handler((req, res) => res.status(404).json({ error: `no route for ${req.method} ${req.path}` }));

const host = process.env.HOST || '127.0.0.1';
app.listen(Number(process.env.PORT ?? 3000), host).then(() => {
  console.log(`REST + SSE app on http://${host}:${app.port}/api/todos`);
});
