import { describe, expect, it } from 'vitest'
import type { TDesiredLb } from '@alveary/core/protocol'
import { render } from './config'
import { assign, emptyAssignment } from './slots'

const lbOf = (extra: Partial<TDesiredLb> = {}): TDesiredLb => ({
  id: 'c0c0c0c0-c0c0-4c0c-8c0c-c0c0c0c0c0c0',
  name: 'front',
  algorithm: 'roundrobin',
  stickySeconds: null,
  drainSeconds: 0,
  listeners: [{ port: 30080, protocol: 'http', routes: [{ host: null, pathPrefix: null, backend: 'l30080_r0' }] }],
  backends: [{ name: 'l30080_r0', servers: [{ id: '00000000-0000-4000-8000-000000000001', address: '198.18.0.2', port: 8080, weight: 100, state: 'ready' }] }],
  ...extra,
})
const cfg = (lb: TDesiredLb) => render([lb], assign(emptyAssignment(), [lb], () => null, () => true).next.backends, { adminSocket: '/a', idleSocket: '/i', cookieKey: 'k', maxconn: 10 })

describe('HAProxy configuration', () => {
  it('retries only requests that could not be sent unless the load balancer asks for more (an L7 retry copies every request)', () => {
    const text = cfg(lbOf())
    expect(text).not.toContain('retry-on')
    expect(text).toContain('  retries 3')
  })

  it('retryUnanswered: idempotent requests an instance closed without answering go to another, others never twice', () => {
    const text = cfg(lbOf({ retryUnanswered: true }))
    expect(text).toContain('  retry-on conn-failure empty-response\n  http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS\n')
  })

  it('sets no stickiness cookie unless asked', () => {
    expect(cfg(lbOf())).not.toContain('cookie')
    expect(cfg(lbOf({ stickySeconds: 60 }))).toContain('cookie ALVEARY_LB insert indirect nocache dynamic maxlife 60s')
  })
})
