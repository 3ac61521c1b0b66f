'use strict';
// An LLM-style token stream: each request streams generated tokens as SSE events, honours
// backpressure, stops generating as soon as the client goes away, and ends with `event: done`.
//
//   curl -N 'http://127.0.0.1:3000/v1/stream?prompt=why+is+the+sky+blue'
const { setTimeout: sleep } = require('node:timers/promises');
const { Server } = require('..'); // in your app: require('hyper-sse')

const app = new Server();

// Stand-in for a model: yields words with a small delay.
async function* generate(prompt, signal) {
  const answer = `You asked: "${prompt}". This answer arrives one token at a time, as a model would produce it.`;
  for (const token of answer.split(/(?<= )/)) {
    if (signal.aborted) return;
    await sleep(20);
    yield token;
  }
}

// Resolves on 'drain', or when the stream ended (drain would never come then).
function writable(res) {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

app.get('/v1/stream', async (req, res) => {
  const prompt = String(req.query.prompt || 'hello');
  const stop = new AbortController();
  res.once('abort', () => stop.abort()); // the client left: stop spending tokens
  res.once('close', () => console.log(`stream ended: ${res.close_reason}`));

  let count = 0;
  for await (const token of generate(prompt, stop.signal)) {
    const ok = res.sse.send('token', JSON.stringify({ index: count++, token }));
    if (!ok) {
      if (!res.sse.active) return;
      await writable(res);
    }
  }
  if (!res.sse.active) return;
  res.sse.send('done', JSON.stringify({ tokens: count }));
  res.sse.close();
});

const host = process.env.HOST || '127.0.0.1';
app.listen(Number(process.env.PORT ?? 3000), host).then(() => {
  console.log(`token stream on http://${host}:${app.port}/v1/stream?prompt=hello`);
});
