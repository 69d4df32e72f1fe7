// A dependency-free demo app for Alveary's process driver: serves on $PORT, stops on SIGTERM.
const http = require('node:http')

const id = process.env.ALVEARY_INSTANCE_ID ?? 'local'
const app = process.env.ALVEARY_APP ?? 'hello'
const ordinal = process.env.ALVEARY_ORDINAL ?? '0'
const port = Number(process.env.PORT ?? 8080)

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
    res.end(`hello from ${id} (app ${app}, ordinal ${ordinal})\n`)
    return
  }
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
  res.end('not found\n')
})

server.listen(port, () => console.log(`hello: listening on port ${port}`))

process.on('SIGTERM', () => {
  console.log('hello: SIGTERM received, shutting down')
  server.close(() => process.exit(0))
  // Idle keep-alive connections would otherwise hold close() open.
  server.closeAllConnections()
})
