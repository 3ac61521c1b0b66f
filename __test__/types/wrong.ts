// Deliberately wrong uses of hyper-sse: each marked line must fail to compile with the marked
// error code, and nothing else may fail (checked by __test__/typescript.spec.mjs).
import { Server, Channel } from 'hyper-sse';
export { RouterBase } from 'hyper-sse'; // @expect TS2459

const app = new Server({ max_body_length: '1mb' }); // @expect TS2322
new Server({ sse_heartbeat: true }); // @expect TS2322
const feed = new Channel({ histroy: 10 }); // @expect TS2561

app.use((req, res, next) => {
  res.sse.send('hello'); // @expect TS18048
  next();
});

app.get('/events', (req, res) => {
  res.sse.sendd('hello'); // @expect TS2551
  res.sse.nickname = 'x'; // @expect TS2339
  res.sse?.retry('5s'); // @expect TS2345
  res.status('404'); // @expect TS2345
  if (res.close_reason === 'aborted') return; // @expect TS2367
  res.once('close', (_req, closed) => console.log(closed.close_reason.length)); // @expect TS18047
  const n: number = feed.send('tick', 'x'); // @expect TS2322
  console.log(n, req.params.id.toFixed()); // @expect TS2551
});

interface Signup {
  email: string;
}

app.post('/signup', async (req, res) => {
  const body = await req.json<Signup>({});
  res.send(body.emial); // @expect TS2551
  res.send(res.statusCode.toFixed()); // @expect TS18048
});

app.listen('8080'); // @expect TS2769
app.shutdown('soon'); // @expect TS2345
app.force_close(1000); // @expect TS2554
