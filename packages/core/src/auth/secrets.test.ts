import { describe, expect, it } from 'vitest'
import { hashPassword, verifyPassword } from './secrets'

describe('password hashes', () => {
  it('verify at the cost they were made with, whatever the current cost', async () => {
    const cheap = await hashPassword('pw-1', 12)
    expect(cheap.split('$')[1]).toBe(String(2 ** 12))
    expect(await verifyPassword('pw-1', cheap)).toBe(true)
    expect(await verifyPassword('pw-2', cheap)).toBe(false)
    const dear = await hashPassword('pw-1', 14)
    expect(dear.split('$')[1]).toBe(String(2 ** 14))
    expect(await verifyPassword('pw-1', dear)).toBe(true)
  })
  it('refuse a malformed stored hash', async () => {
    expect(await verifyPassword('pw', 'scrypt$$$')).toBe(false)
    expect(await verifyPassword('pw', 'bcrypt$1$2$3$4$5')).toBe(false)
  })
})
