// A realistic TypeScript app on hyper-sse, type-checked with `tsc --noEmit --strict` by
// __test__/typescript.spec.mjs (never run). It is written the way a Hyper-Express user writes one:
// global and router middlewares, async handlers, typed bodies, cookies, streaming, res.sse with
// a connection pool, a Channel with replay, the hyper-sse server options and lifecycle calls.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as HyperExpress from 'hyper-sse';
import {
  Server,
  Router,
  Channel,
  compressors,
  type Request,
  type Response,
  type MiddlewareHandler,
  type MiddlewareNext,
  type SSEventStream,
  type ServerConstructorOptions,
  type CloseReason,
  type UserRouteHandler,
  type ListenSocket,
} from 'hyper-sse';

// An application's own property on res.sse, declared by augmentation (see index.d.ts).
declare module 'hyper-sse' {
  interface SSEventStream {
    user?: string;
  }
}

interface Todo {
  id: number;
  title: string;
  done: boolean;
}

interface NewTodo {
  title?: unknown;
}

const options: ServerConstructorOptions = {
  max_body_length: 64 * 1024,
  trust_proxy: true,
  auto_close: false,
  sse_heartbeat: 10_000,
  max_queued_bytes: 512 * 1024,
  write_timeout: 20_000,
  worker_threads: 1,
  max_header_size: 16_384,
  streaming: { writable: { highWaterMark: 32 * 1024 } },
};

const app = new Server(options);
const api = new Router();
const feed = new Channel({ history: 100 });
const pool = new Map<string, SSEventStream>();
const todos = new Map<number, Todo>();
const closeReasons: Record<CloseReason, number> = {
  finished: 0,
  client: 0,
  timeout: 0,
  slow_client: 0,
  server: 0,
  shutdown: 0,
};

// ---- middlewares

const requestId: MiddlewareHandler = (req, res, next) => {
  req.locals.id = randomUUID();
  res.header('x-request-id', req.locals.id);
  next();
};

function requireToken(req: Request, res: Response, next: MiddlewareNext): void {
  const token = req.header('authorization') ?? req.cookies['token'];
  if (token === undefined) {
    res.status(401).json({ error: 'unauthorized' });
    return;
  }
  if (token === 'bad') return next(new Error('invalid token'));
  req.locals.user = token;
  next();
}

async function parseJson(req: Request): Promise<void> {
  if (req.method === 'POST') req.body = await req.json<NewTodo, null>(null);
}

const timing = {
  middleware: ((req, res, next) => {
    const start = Date.now();
    res.once('prepare', () => res.header('x-response-time', `${Date.now() - start}ms`));
    next();
  }) satisfies MiddlewareHandler,
};

app.use(requestId);
app.use(timing);
api.use(parseJson);
api.use('/admin', requireToken);

// ---- REST routes

const listTodos: UserRouteHandler = (req, res) => {
  const page = Number(req.query.page ?? 1);
  res.json({ page, items: [...todos.values()] });
};
api.get('/todos', listTodos);

// Lines as written for Hyper-Express 6.14.12's own typings compile unchanged.
interface Signup {
  email: string;
  name: string;
}
api.post('/signup', async (req, res) => {
  const { email, name } = await req.json<Signup>();
  const form = await req.urlencoded<{ q: string }>();
  const page = parseInt(req.query_parameters.page, 10);
  res.json({ email, name, q: form.q, page });
});

api.get('/todos/:id', (req, res) => {
  const todo = todos.get(Number(req.params.id));
  if (todo === undefined) return res.status(404).json({ error: `no todo ${req.params.id}` });
  return res.json(todo);
});

api.post('/todos', { max_body_length: 4096 }, (req: Request, res: Response) => {
  const body = req.body as NewTodo | null;
  if (body === null || typeof body.title !== 'string') {
    res.status(400, 'Bad Todo').json({ error: 'title is required' });
    return;
  }
  const todo: Todo = { id: todos.size + 1, title: body.title, done: false };
  todos.set(todo.id, todo);
  const eventId: string = feed.send('created', JSON.stringify(todo));
  res.status(201).header('location', `/api/todos/${todo.id}`).json({ ...todo, eventId });
});

api
  .route('/admin/stats')
  .get((req, res) => {
    res.json({ user: req.locals.user, streams: pool.size, subscribers: feed.size, closeReasons });
  })
  .delete(async (req, res) => {
    const ended: number = feed.close();
    res.json({ ended });
  });

api.get('/export', async (req, res) => {
  res.type('csv').header('content-disposition', 'attachment; filename="todos.csv"');
  const rows = [...todos.values()].map((t) => `${t.id},${JSON.stringify(t.title)},${t.done}\n`);
  await res.stream(Readable.from(rows));
});

api.post('/upload', { max_body_length: 1 << 20, middlewares: [requireToken] }, [requestId], async (req, res) => {
  let bytes = 0;
  for await (const chunk of req) bytes += (chunk as Buffer).length;
  res.json({ bytes, received: req.received });
});

api.get('/copy', async (req, res) => {
  await pipeline(Readable.from(['a', 'b', 'c']), res);
});

api.get('/big', (req, res) => {
  let i = 0;
  const more = (): void => {
    while (i < 1000) {
      if (!res.write(`line ${i++}\n`)) {
        res.once('drain', more);
        return;
      }
    }
    res.end();
  };
  more();
});

app.get('/login', (req, res) => {
  res
    .cookie('token', randomUUID(), 3_600_000, { httpOnly: true, sameSite: 'lax', secure: true, path: '/' })
    .redirect('/api/admin/stats');
});

// ---- Server-Sent Events

app.get('/events', (req, res) => {
  const sse = res.sse;
  if (sse === undefined) return res.status(405).send();
  sse.id = randomUUID();
  pool.set(sse.id, sse);
  res.once('close', (_req, closed) => {
    pool.delete(sse.id);
    if (closed.close_reason !== null) closeReasons[closed.close_reason] += 1;
  });
  res.once('abort', () => console.log(`client ${String(sse.id)} left`));
  sse.retry(3000);
  sse.comment('welcome');
  feed.subscribe(sse);
  return undefined;
});

app.get('/tokens', async (req, res) => {
  if (!res.sse) return;
  for (const token of ['Hello', ', ', 'world']) {
    if (!res.sse.send('token', token)) {
      if (!res.sse.active) return;
      await new Promise<void>((resolve) => res.once('drain', resolve));
    }
  }
  res.sse.send(undefined, 'done', '');
  const r: Response = res.sse.close();
  console.log(r.completed, r.close_reason);
});

// The pool pattern as Hyper-Express users write it: in a GET route `res.sse` is always there.
const streams: { [id: string]: SSEventStream } = {};
app.get('/pool', (req, res) => {
  res.sse.id = randomUUID();
  streams[res.sse.id] = res.sse;
  res.sse.user = req.header('x-user');
  res.once('close', () => delete streams[res.sse.id]);
  feed.subscribe(res.sse);
});

// A helper that registers routes on a Server or a Router (README: "Differences ... TypeScript").
function registerHealth(r: Server | Router): void {
  r.get('/healthz', (req, res) => res.send(res.sse.active ? 'ok' : 'ok'));
}
registerHealth(app);

// Handlers typed ahead of time are accepted by get() too.
const logOnly: MiddlewareHandler = (req, res, next) => next();
const plain: UserRouteHandler = (req, res) => res.send(req.accepts().join(','));
app.get('/typed', logOnly, plain);

interface Signup {
  email: string;
}

app.post('/signup', async (req, res) => {
  const body = await req.json<Signup>({});
  const lang: string | false = req.acceptsLanguages(['en', 'fr']);
  const charsets: string[] = req.acceptsCharsets();
  const tags = req.query.tag;
  const list: string[] = Array.isArray(tags) ? tags : typeof tags === 'string' ? [tags] : [];
  if (req.readableEnded || res.writableObjectMode) req.destroy();
  const chunks: Buffer[] = await req.toArray();
  res.json({ email: 'email' in body ? body.email : null, lang, charsets, list, bytes: chunks.length });
});

function broadcastToPool(event: string, data: unknown): number {
  let delivered = 0;
  for (const sse of pool.values()) if (sse.send(null, event, JSON.stringify(data))) delivered++;
  return delivered;
}

setInterval(() => {
  feed.send(String(Date.now()), 'tick', '');
  broadcastToPool('heartbeat', { at: Date.now() });
}, 1000).unref();

// ---- handlers, mounting, lifecycle

const health = new HyperExpress.Router();
health.get('/health', (req, res) => res.send('ok'));
app.use('/api', api);
app.use(health);

app.set_error_handler((req, res, error) => {
  console.error(req.method, req.path, error.message);
  res.status(500).json({ error: error.message });
});

app.set_not_found_handler((req, res) => {
  res.status(404).json({ error: `no route for ${req.method} ${req.url}` });
});

async function main(): Promise<void> {
  const socket: ListenSocket = await app.listen(Number(process.env.PORT ?? 8080), '127.0.0.1');
  console.log(`listening on ${socket.host}:${app.port}`, compressors.DISABLED);
  process.on('SIGTERM', async () => {
    await app.shutdown(5000);
  });
  process.on('SIGUSR2', () => app.force_close());
}

main().catch((reason: unknown) => {
  console.error(reason);
  process.exitCode = 1;
});
