// A stateful demo app for Alveary's volumes and moves: it counts up in its volume and serves
// the count over HTTP. Only counts already on disk are served, so a count a client has seen
// is an acknowledged write: after any restart or move the count must never be lower.
//
//   GET /         {"count": N, "run": "<this run>", "instance": "<instance id>"}
//   GET /healthz  200 once the count is loaded
//
// The volume is $ALVEARY_VOLUME_DATA (a volume named "data"). Every write is also appended to
// history.log as "<run> <count>", which tells whether two copies ever wrote at once.
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const crypto = require('node:crypto')

const dir = process.env.ALVEARY_VOLUME_DATA ?? process.env.DATA_DIR ?? '.'
const port = Number(process.env.PORT ?? 8080)
const everyMs = Number(process.env.COUNT_EVERY_MS ?? 20)
/** Extra time the app takes to shut down (a database flushing): makes moves observable in tests. */
const shutdownDelayMs = Number(process.env.SHUTDOWN_DELAY_MS ?? 0)
const run = crypto.randomBytes(4).toString('hex')
fs.mkdirSync(dir, { recursive: true })
const countFile = path.join(dir, 'count')
const history = fs.openSync(path.join(dir, 'history.log'), 'a')

let count = 0
try {
  count = Number(fs.readFileSync(countFile, 'utf8')) || 0
} catch {
  /* a new volume */
}

function write() {
  const next = count + 1
  const tmp = `${countFile}.tmp`
  fs.writeFileSync(tmp, String(next))
  fs.renameSync(tmp, countFile)
  fs.writeSync(history, `${run} ${next}\n`)
  count = next
}

const timer = setInterval(write, everyMs)

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' })
    return res.end('ok\n')
  }
  if (req.method === 'GET' && req.url === '/') {
    res.writeHead(200, { 'content-type': 'application/json' })
    return res.end(JSON.stringify({ count, run, instance: process.env.ALVEARY_INSTANCE_ID ?? 'local' }))
  }
  res.writeHead(404)
  res.end()
})
server.keepAliveTimeout = 1000
server.listen(port, () => console.log(`counter: run ${run} at ${count}, listening on ${port}, volume ${dir}`))

process.on('SIGTERM', () => {
  clearInterval(timer)
  server.close()
  server.closeAllConnections()
  setTimeout(() => {
    fs.closeSync(history)
    console.log(`counter: run ${run} stopped at ${count}`)
    process.exit(0)
  }, shutdownDelayMs)
})
