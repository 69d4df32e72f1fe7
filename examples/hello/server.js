// A dependency-free demo app for Alveary's process driver: serves on $PORT, stops on SIGTERM.
// GET /healthz answers 200 while ready (503 after POST /admin/unready, again 200 after POST
// /admin/ready); GET /livez answers 200 until POST /admin/hang, after which nothing is
// answered any more (a hung process, for liveness checks). Health checks in the README use it.
const http = require('node:http')

const id = process.env.ALVEARY_INSTANCE_ID ?? 'local'
const app = process.env.ALVEARY_APP ?? 'hello'
const ordinal = process.env.ALVEARY_ORDINAL ?? '0'
const version = process.env.VERSION ? ` version ${process.env.VERSION}` : ''
const port = Number(process.env.PORT ?? 8080)
let ready = true
let hung = false

const server = http.createServer((req, res) => {
  if (hung) return // never answered
  const text = (status, body) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' })
    res.end(body)
  }
  const path = (req.url ?? '/').split('?')[0]
  if (req.method === 'GET' && path === '/healthz') return text(ready ? 200 : 503, ready ? 'ok\n' : 'not ready\n')
  if (req.method === 'GET' && path === '/livez') return text(200, 'alive\n')
  if (req.method === 'POST' && path === '/admin/unready') return ((ready = false), text(200, 'unready\n'))
  if (req.method === 'POST' && path === '/admin/ready') return ((ready = true), text(200, 'ready\n'))
  if (req.method === 'POST' && path === '/admin/hang') return (text(200, 'hanging\n'), (hung = true))
  if (req.method === 'GET') return text(200, `hello from ${id} (app ${app}, ordinal ${ordinal}${version}) path ${path}\n`)
  text(404, 'not found\n')
})

server.listen(port, () => console.log(`hello: listening on port ${port}`))

process.on('SIGTERM', () => {
  console.log('hello: SIGTERM received, shutting down')
  server.close(() => process.exit(0))
  // Idle keep-alive connections would otherwise hold close() open.
  server.closeAllConnections()
})
