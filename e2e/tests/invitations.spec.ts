import { expect, test } from '@playwright/test'
import { OPERATOR } from '../env'
import { baseURL, invitedMember, login, logout, operatorApi, tenantWithDeveloper, trpc, uid } from './helpers'

test('an owner invites an existing user and a new person; they accept or decline; nobody joins without saying yes', async ({ page, browser }) => {
  // Five accounts signed up or in (each a real password hash) and four browser contexts.
  test.setTimeout(180_000)
  const { tenant, member: owner } = await tenantWithDeveloper('inv')
  // Someone who already has an account (owner of another tenant).
  const api = await operatorApi()
  const elsewhere = await trpc<{ id: string }>(api, 'tenants.create', { slug: `else-${uid()}`, name: 'Elsewhere' })
  const existing = { email: `existing-${uid()}@example.test`, password: 'existing-pw-1', name: 'Ezra Existing' }
  await invitedMember(api, elsewhere.id, existing, 'owner')
  await api.dispose()
  const newcomer = { email: `new-${uid()}@example.test`, password: 'newcomer-pw-1', name: 'Nora Newcomer' }

  // The owner invites both from the members page: the same answer for each, a link to send.
  await login(page, owner.email, owner.password)
  await page.getByTestId('nav-members').click()
  await expect(page).toHaveURL(new RegExp(`/t/${tenant.slug}/members$`))
  const links: Record<string, string> = {}
  for (const [who, role] of [
    [existing, 'developer'],
    [newcomer, 'viewer'],
  ] as const) {
    await page.locator('#i-email').fill(who.email)
    await page.locator('#i-role').selectOption(role)
    await page.getByTestId('invite-submit').click()
    await expect(page.getByTestId('invitation-created')).toContainText(who.email)
    links[who.email] = (await page.getByTestId('invite-link').textContent())!.trim()
    await expect(page.locator(`[data-testid=invitation-row][data-email="${who.email}"]`)).toBeVisible()
  }
  expect(links[existing.email]).toMatch(/\/invite#iv_/)
  // Nobody joined yet.
  await expect(page.getByTestId('member-row')).toHaveCount(1)

  // The existing user signs in elsewhere, sees the invitation and joins.
  const other = await browser.newContext({ baseURL })
  const them = await other.newPage()
  await login(them, existing.email, existing.password)
  await them.getByTestId('invitations-pill').click()
  await expect(them).toHaveURL(/\/invitations$/)
  const card = them.locator(`[data-testid=received-invitation][data-tenant="${tenant.slug}"]`)
  await expect(card).toContainText(owner.name)
  await card.getByTestId('invitation-accept').click()
  await expect(them).toHaveURL(new RegExp(`/t/${tenant.slug}/apps$`))
  await other.close()

  // The newcomer opens the link, creates the account and lands in the tenant.
  const fresh = await browser.newContext({ baseURL })
  const nora = await fresh.newPage()
  await nora.goto(links[newcomer.email]!)
  await expect(nora.getByTestId('invite-page')).toContainText(`${owner.name} invites ${newcomer.email}`)
  await nora.locator('#su-name').fill(newcomer.name)
  await nora.locator('#su-password').fill(newcomer.password)
  await nora.getByTestId('signup-submit').click()
  await expect(nora).toHaveURL(new RegExp(`/t/${tenant.slug}/apps$`))
  await expect(nora.getByTestId('current-user')).toHaveText(newcomer.name)
  // The link is spent.
  const again = await (await browser.newContext({ baseURL })).newPage()
  await again.goto(links[newcomer.email]!)
  await expect(again.getByTestId('invitation-invalid')).toBeVisible()
  await fresh.close()

  // The owner's page shows both as members (live), with their roles, and no pending invitation.
  await expect(page.locator(`[data-testid=member-row][data-email="${existing.email}"]`)).toBeVisible()
  await expect(page.locator(`[data-testid=member-row][data-email="${newcomer.email}"]`)).toBeVisible()
  await expect(page.getByTestId('invitation-row')).toHaveCount(0)

  // A third invitation, declined from its link by the person signed in with that e-mail.
  await page.locator('#i-email').fill(existing.email.replace('existing', 'decliner'))
  await page.getByTestId('invite-submit').click()
  const declineLink = (await page.getByTestId('invite-link').textContent())!.trim()
  const decliner = { email: existing.email.replace('existing', 'decliner'), password: 'decliner-pw-1', name: 'Dee Cliner' }
  const api2 = await operatorApi()
  const t3 = await trpc<{ id: string }>(api2, 'tenants.create', { slug: `dec-${uid()}`, name: 'Decliner' })
  await invitedMember(api2, t3.id, decliner, 'owner')
  await api2.dispose()
  const dctx = await browser.newContext({ baseURL })
  const d = await dctx.newPage()
  await login(d, decliner.email, decliner.password)
  await d.goto(declineLink)
  await d.getByTestId('invitation-decline').click()
  await expect(d.getByTestId('invite-page')).toContainText('Invitation declined')
  await dctx.close()
  await expect(page.getByTestId('invitation-row')).toHaveCount(0)
  await expect(page.locator(`[data-testid=member-row][data-email="${decliner.email}"]`)).toHaveCount(0)

  // Withdrawing: the link stops working.
  await page.locator('#i-email').fill(`withdrawn-${uid()}@example.test`)
  await page.getByTestId('invite-submit').click()
  const withdrawn = (await page.getByTestId('invite-link').textContent())!.trim()
  await page.getByTestId('invitation-withdraw').click()
  await page.getByTestId('invitation-withdraw-confirm').click()
  await expect(page.getByTestId('invitation-row')).toHaveCount(0)
  const w = await (await browser.newContext({ baseURL })).newPage()
  await w.goto(withdrawn)
  await expect(w.getByTestId('invitation-invalid')).toBeVisible()
  await logout(page)

  // An operator sees the tenant's members but cannot invite into a tenant that has an owner.
  await login(page, OPERATOR.email, OPERATOR.password)
  await page.goto(`/t/${tenant.slug}/members`)
  await expect(page.locator(`[data-testid=member-row][data-email="${owner.email}"]`)).toBeVisible()
  await expect(page.getByTestId('invite')).toHaveCount(0)
})

test('repeated wrong passwords make the sign-in page wait, with a countdown', async ({ page }) => {
  test.setTimeout(120_000)
  const { member } = await tenantWithDeveloper('thr')
  await page.goto('/login')
  await page.locator('#email').fill(member.email)
  await page.locator('#password').fill('not-the-password')
  const banner = page.getByTestId('login-throttled')
  const signIn = page.getByRole('button', { name: 'Sign in' })
  // Fail until the back-off is a few seconds long (it doubles with each failure after five).
  for (let i = 0; i < 16 && !/try again in ([4-9]|\d\d+) s/.test((await banner.count()) ? ((await banner.textContent()) ?? '') : ''); i++) {
    await expect(signIn).toBeEnabled({ timeout: 30_000 })
    await signIn.click()
    await expect(page.getByTestId('error').or(banner)).toBeVisible()
  }
  await expect(banner).toContainText('Too many failed sign-ins')
  await expect(page.getByRole('button', { name: /Wait \d+ s/ })).toBeDisabled()
  // The wait runs out; the right password then works.
  await expect(banner).toContainText('You can try again now', { timeout: 30_000 })
  await page.locator('#password').fill(member.password)
  await signIn.click()
  await expect(page.getByTestId('current-user')).toBeVisible()
})
