'use strict';
// One benchmark server, started by run.js as a child process with an IPC channel:
//
//   node --expose-gc bench/server.js <hyper-sse|hyper-express|node>
//
// hyper-sse and hyper-express run the SAME route code below (hyper-sse speaks the Hyper-Express
// API); only the require() differs. The node:http variant implements the same endpoints by hand.
//
// Endpoints:
//   GET /        -> 'Hello World'
//   GET /sse     -> SSE stream: `open()`, kept in a pool until it closes; abort/close are counted
//   GET /sse-ch  -> like /sse, then subscribed to a hyper-sse Channel (hyper-sse only)
//
// IPC commands (from run.js, each answered with { re: <id>, ... }):
//   { cmd: 'stats' }                         counts, pool size, RSS
//   { cmd: 'gc' }                            global.gc() twice (needs --expose-gc)
//   { cmd: 'armClose', n }                   push { type: 'allClosed', ... } once n `close` ran
//   { cmd: 'throughput', n, size }           send n events of `size` bytes to the only stream,
//                                            honouring backpressure (await 'drain')
//   { cmd: 'broadcast', events, size, mode } `events` broadcasts of `size` bytes to every stream,
//                                            mode 'loop' (sse.send per stream) or 'channel'
//                                            (one Channel.send per broadcast); one event-loop
//                                            turn (setImmediate) between broadcasts, unless
//                                            `sync` (then all broadcasts in one synchronous run)
// Times are process.hrtime.bigint() (CLOCK_MONOTONIC), the clock the Rust client reads too.

const path = require('node:path');
const { setImmediate: tick } = require('node:timers/promises');

const impl = process.argv[2];
if (!['hyper-sse', 'hyper-express', 'node'].includes(impl)) {
    console.error('usage: server.js <hyper-sse|hyper-express|node>');
    process.exit(2);
}
if (typeof process.send !== 'function') {
    console.error('server.js must be started by run.js (needs an IPC channel)');
    process.exit(2);
}

const now_ns = () => process.hrtime.bigint();
const now_us = () => Number(process.hrtime.bigint() / 1000n);

// ---------------------------------------------------------------------------------------------
// Shared bookkeeping: one record per stream, events counted exactly as an app would see them.

const pool = new Set();
const stats = {
    opened: 0,
    aborts: 0,
    closes: 0,
    dup_aborts: 0,
    dup_closes: 0,
    abort_after_close: 0,
    close_without_abort: 0,
    last_close_ns: 0n,
};
let close_target = 0;

function on_abort(rec) {
    rec.aborted++;
    stats.aborts++;
    if (rec.aborted > 1) stats.dup_aborts++;
    if (rec.closed > 0) stats.abort_after_close++;
}

function on_close(rec) {
    rec.closed++;
    stats.closes++;
    if (rec.closed > 1) stats.dup_closes++;
    if (rec.aborted === 0) stats.close_without_abort++;
    pool.delete(rec);
    stats.last_close_ns = now_ns();
    if (close_target > 0 && stats.closes === close_target) {
        close_target = 0;
        process.send({ type: 'allClosed', last_close_ns: String(stats.last_close_ns), ...plain_stats() });
    }
}

function plain_stats() {
    return {
        opened: stats.opened,
        aborts: stats.aborts,
        closes: stats.closes,
        dup_aborts: stats.dup_aborts,
        dup_closes: stats.dup_closes,
        abort_after_close: stats.abort_after_close,
        close_without_abort: stats.close_without_abort,
        pool: pool.size,
        channel_size: channel ? channel.size : null,
        rss: process.memoryUsage.rss(),
        heap_used: process.memoryUsage().heapUsed,
        external: process.memoryUsage().external,
    };
}

// ---------------------------------------------------------------------------------------------
// Servers

let channel = null; // hyper-sse Channel for /sse-ch
let send_event; // (rec, data) -> boolean (false = wait for drain)
let port;

async function start_hyper(lib) {
    const app = new lib.Server();
    app.get('/', (req, res) => {
        res.send('Hello World');
    });
    const stream = (req, res) => {
        const rec = { res, sse: res.sse, aborted: 0, closed: 0 };
        res.on('abort', () => on_abort(rec));
        res.on('close', () => on_close(rec));
        rec.sse.open();
        pool.add(rec);
        stats.opened++;
        return rec;
    };
    app.get('/sse', stream);
    if (lib.Channel) {
        channel = new lib.Channel({ history: 0 });
        app.get('/sse-ch', (req, res) => {
            const rec = stream(req, res);
            channel.subscribe(rec.sse);
        });
    }
    send_event = (rec, data) => rec.sse.send(data);
    await app.listen(0, '127.0.0.1');
    return app.port;
}

function start_node() {
    const http = require('node:http');
    const server = http.createServer((req, res) => {
        if (req.method === 'GET' && req.url === '/') {
            res.end('Hello World');
        } else if (req.method === 'GET' && req.url === '/sse') {
            const rec = { res, aborted: 0, closed: 0 };
            res.on('close', () => {
                // node:http has no 'abort' on the response: a close before end() is the abort.
                if (!res.writableEnded) on_abort(rec);
                on_close(rec);
            });
            res.writeHead(200, {
                'content-type': 'text/event-stream',
                'cache-control': 'no-cache',
                connection: 'keep-alive',
                'x-accel-buffering': 'no',
            });
            res.write(': open\n');
            pool.add(rec);
            stats.opened++;
        } else {
            res.statusCode = 404;
            res.end();
        }
    });
    server.keepAliveTimeout = 60_000;
    server.headersTimeout = 65_000;
    server.requestTimeout = 0;
    send_event = (rec, data) => rec.res.write(`data: ${data}\n\n`);
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', 1024, () => resolve(server.address().port));
    });
}

// Resolves on 'drain', or on 'close' (then the stream is gone).
function drain_or_close(res) {
    return new Promise((resolve) => {
        const done = () => {
            res.removeListener('drain', done);
            res.removeListener('close', done);
            resolve();
        };
        res.on('drain', done);
        res.on('close', done);
    });
}

// ---------------------------------------------------------------------------------------------
// Commands

async function throughput({ n, size }) {
    if (pool.size !== 1) throw new Error(`throughput needs exactly 1 open stream, have ${pool.size}`);
    const [rec] = pool;
    const data = 'x'.repeat(size);
    let waits = 0;
    let sent = 0;
    const t0 = now_ns();
    while (sent < n) {
        const ok = send_event(rec, data);
        sent++;
        if (!ok) {
            waits++;
            await drain_or_close(rec.res);
            if (rec.closed) break;
        }
    }
    const t1 = now_ns();
    return { t0_ns: String(t0), t1_ns: String(t1), sent, drain_waits: waits, stream_closed: rec.closed > 0 };
}

async function broadcast({ events, size, mode, sync }) {
    if (mode === 'channel' && !channel) throw new Error('no Channel in this implementation');
    const recs = [...pool];
    let false_returns = 0;
    const t0 = now_ns();
    for (let e = 0; e < events; e++) {
        // Each event carries its send time (µs, CLOCK_MONOTONIC) for the latency at the client.
        const data = `${now_us()}:${e}:`.padEnd(size, 'x');
        if (mode === 'channel') {
            channel.send(data);
        } else {
            for (let i = 0; i < recs.length; i++) {
                if (send_event(recs[i], data) === false) false_returns++;
            }
        }
        if (!sync) await tick();
    }
    const t1 = now_ns();
    return { t0_ns: String(t0), t1_ns: String(t1), streams: recs.length, false_returns };
}

process.on('message', async (msg) => {
    let reply;
    try {
        switch (msg.cmd) {
            case 'stats':
                reply = plain_stats();
                break;
            case 'gc':
                if (typeof global.gc === 'function') {
                    global.gc();
                    global.gc();
                }
                reply = { gc: typeof global.gc === 'function' };
                break;
            case 'armClose':
                close_target = msg.n;
                reply = { armed: true };
                if (stats.closes >= msg.n) throw new Error(`already ${stats.closes} closes`);
                break;
            case 'throughput':
                reply = await throughput(msg);
                break;
            case 'broadcast':
                reply = await broadcast(msg);
                break;
            default:
                throw new Error(`unknown command ${msg.cmd}`);
        }
    } catch (err) {
        reply = { error: String((err && err.stack) || err) };
    }
    process.send({ re: msg.id, ...reply });
});

// The IPC channel must not keep the process alive once run.js is gone.
process.on('disconnect', () => process.exit(0));

(async () => {
    try {
        if (impl === 'node') port = await start_node();
        else port = await start_hyper(impl === 'hyper-sse' ? require(path.join(__dirname, '..')) : require('hyper-express'));
    } catch (err) {
        process.send({ type: 'startError', error: String((err && err.stack) || err) });
        process.exit(1);
    }
    process.send({ type: 'listening', port, pid: process.pid, channel: !!channel });
})();
