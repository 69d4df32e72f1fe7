import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import type http from 'node:http'
import path from 'node:path'

const require = createRequire(import.meta.url)
const dist = path.dirname(require.resolve('swagger-ui-dist/package.json'))
const ASSETS: Record<string, string> = { 'swagger-ui.css': 'text/css', 'swagger-ui-bundle.js': 'text/javascript', 'swagger-ui-standalone-preset.js': 'text/javascript', 'favicon-32x32.png': 'image/png' }

// Served by the BFF from the swagger-ui-dist package (no CDN: works without internet). The
// page lets the reader paste an API token (Authorize) and try calls against this server.
const page = (base: string) => `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Alveary API</title>
  <link rel="stylesheet" href="${base}/docs/swagger-ui.css">
  <link rel="icon" href="${base}/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${base}/docs/swagger-ui-bundle.js"></script>
  <script src="${base}/docs/swagger-ui-standalone-preset.js"></script>
  <script src="${base}/docs/init.js"></script>
</body>
</html>
`
const init = (base: string) => `window.ui = SwaggerUIBundle({ url: '${base}/openapi.json', dom_id: '#swagger-ui', deepLinking: true, presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: 'StandaloneLayout', persistAuthorization: true })\n`

/** /api/v1/docs/: a browsable viewer (Swagger UI) of /api/v1/openapi.json. */
export async function serveDocs(base: string, pathname: string, res: http.ServerResponse): Promise<boolean> {
  const file = pathname.slice(`${base}/docs/`.length)
  if (pathname === `${base}/docs` || file === '' || file === 'index.html') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' })
    res.end(page(base))
    return true
  }
  if (file === 'init.js') {
    res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-cache' })
    res.end(init(base))
    return true
  }
  const type = ASSETS[file]
  if (!type) return false
  res.writeHead(200, { 'content-type': type, 'cache-control': 'public, max-age=3600' })
  res.end(await readFile(path.join(dist, file)))
  return true
}
