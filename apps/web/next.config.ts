import path from 'node:path'
import type { NextConfig } from 'next'

const repoRoot = path.join(import.meta.dirname, '../..')

const config: NextConfig = {
  // Workspace packages ship TypeScript source; the console imports only @alveary/core/schemas.
  transpilePackages: ['@alveary/core'],
  poweredByHeader: false,
  // /trpc/* is forwarded to the BFF by proxy.ts (NextResponse.rewrite to BFF_URL, read per
  // request). Subscriptions are long-lived SSE streams: the proxy's idle timeout (default
  // 30 s) would cut them, so allow an hour; the client reconnects after that anyway.
  experimental: { proxyTimeout: 3_600_000 },
  turbopack: { root: repoRoot },
  devIndicators: false,
  outputFileTracingRoot: repoRoot,
}

export default config
