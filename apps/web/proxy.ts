import { NextResponse, type NextRequest } from 'next/server'

/** Name of the HTTP-only session cookie the BFF sets on auth.login. */
const SESSION_COOKIE = 'alveary_session'

/**
 * Two jobs, both per request (so one build works with any BFF):
 * - /trpc/* and /api/v1/* (REST, OpenAPI document, audit export) are forwarded to the BFF at BFF_URL (read at run time, not at build time).
 *   Next proxies external rewrites with a streaming HTTP proxy, so SSE subscriptions and
 *   Set-Cookie headers pass through unchanged.
 * - Pages redirect to /login when there is no session cookie. An expired session still has
 *   a cookie; the client then gets UNAUTHORIZED from the API and goes to /login itself.
 */
export function proxy(request: NextRequest) {
  const { pathname, search } = request.nextUrl
  if (pathname === '/trpc' || pathname.startsWith('/trpc/') || pathname.startsWith('/api/v1/')) {
    const base = (process.env['BFF_URL'] || 'http://127.0.0.1:4000').replace(/\/+$/, '')
    return NextResponse.rewrite(new URL(`${base}${pathname}${search}`))
  }
  // Public pages: signing in, and the page an invitation link opens (it signs up new people).
  if (pathname === '/login' || pathname === '/invite') return NextResponse.next()
  if (!request.cookies.get(SESSION_COOKIE)?.value) {
    const url = request.nextUrl.clone()
    url.pathname = '/login'
    url.search = pathname === '/' ? '' : `?next=${encodeURIComponent(pathname + search)}`
    return NextResponse.redirect(url)
  }
  return NextResponse.next()
}

export const config = {
  // The API (procedure paths contain dots, e.g. /trpc/auth.me), and every page: all but
  // Next's own assets and files with an extension (favicon, images).
  matcher: ['/trpc/:path*', '/api/v1/:path*', '/((?!_next/|trpc/|api/v1/|.*\\.[a-zA-Z0-9]+$).*)'],
}
