import { expect, request as pwRequest, type APIRequestContext, type Page } from '@playwright/test'
import { OPERATOR, WEB_PORT } from '../env'

export const baseURL = `http://127.0.0.1:${WEB_PORT}`

/** A short random suffix: names stay unique even against a reused database. */
export const uid = () => Math.random().toString(36).slice(2, 8)

export async function login(page: Page, email: string, password: string) {
  await page.goto('/login')
  await page.locator('#email').fill(email)
  await page.locator('#password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page).not.toHaveURL(/\/login/)
  await expect(page.getByTestId('current-user')).toBeVisible()
}

export async function logout(page: Page) {
  await page.getByTestId('logout').click()
  await expect(page).toHaveURL(/\/login/)
}

/** Calls a tRPC procedure through the console's /trpc proxy (superjson envelope). */
export async function trpc<T = unknown>(api: APIRequestContext, path: string, input?: unknown, kind: 'mutation' | 'query' = 'mutation'): Promise<T> {
  const res =
    kind === 'mutation'
      ? await api.post(`/trpc/${path}`, { data: { json: input } })
      : await api.get(`/trpc/${path}?input=${encodeURIComponent(JSON.stringify({ json: input }))}`)
  const body = await res.text()
  expect(res.ok(), `${path}: ${body}`).toBeTruthy()
  return (JSON.parse(body) as { result: { data: { json: T } } }).result.data.json
}

/** An operator API session, for arranging state the test is not about. */
export async function operatorApi(): Promise<APIRequestContext> {
  const api = await pwRequest.newContext({ baseURL })
  await trpc(api, 'auth.login', OPERATOR)
  return api
}

/**
 * A person joins a tenant the way people do: `inviter` invites the e-mail, the person creates
 * the account through the invitation's link (an API session of their own).
 */
export async function invitedMember(inviter: APIRequestContext, tenantId: string, member: { email: string; password: string; name: string }, role: string) {
  const { token } = await trpc<{ token: string }>(inviter, 'invitations.create', { tenantId, email: member.email, role })
  const invitee = await pwRequest.newContext({ baseURL })
  await trpc(invitee, 'invitations.signUp', { token, name: member.name, password: member.password })
  await invitee.dispose()
}

/** A tenant with one member who can deploy (its first owner, invited by the operator); returns the member's credentials. */
export async function tenantWithDeveloper(prefix: string) {
  const api = await operatorApi()
  const slug = `${prefix}-${uid()}`
  const tenant = await trpc<{ id: string; slug: string }>(api, 'tenants.create', { slug, name: `Tenant ${slug}` })
  const member = { email: `dev-${slug}@example.test`, password: 'dev-password-1', name: 'Dev Eloper' }
  await invitedMember(api, tenant.id, member, 'owner')
  await api.dispose()
  return { tenant, member }
}
