import { describe, expect, it } from 'vitest'
import { auditTarget, redactInput } from './record'

describe('audit record', () => {
  it('keeps any input as small, writable JSON without secrets', () => {
    const out = redactInput({ password: 'pw', joinToken: 'jt_x', name: 'a\u0000b\ud800', n: 10n, when: new Date(0), big: 'x'.repeat(1000), inf: Infinity, set: new Set([1]), list: Array.from({ length: 100 }, () => 1) }) as Record<string, unknown>
    expect(out).toMatchObject({ password: '[redacted]', joinToken: '[redacted]', name: 'a\uFFFDb\uFFFD', n: '10', when: '1970-01-01T00:00:00.000Z', inf: 'Infinity', set: [1] })
    expect((out['big'] as string).length).toBe(501)
    expect(out['list']).toHaveLength(50)
    expect(JSON.parse(JSON.stringify(out))).toEqual(out)
  })

  it('names the object a mutation targets', () => {
    expect(auditTarget('apps.scale', { tenantId: 't', appId: 'a' })).toBe('app/a')
    expect(auditTarget('tokens.revoke', { tenantId: 't', id: 'x' })).toBe('tokens/x')
    expect(auditTarget('tenants.create', { slug: 's', name: 'n' })).toBe('tenants/n')
    expect(auditTarget('auth.logout', undefined)).toBeNull()
  })
})
