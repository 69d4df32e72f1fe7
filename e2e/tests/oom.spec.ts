import { expect, request as pwRequest, test } from '@playwright/test'
import { OPERATOR } from '../env'
import { baseURL, login, logout, operatorApi, tenantWithDeveloper, trpc } from './helpers'

/**
 * An instance the node killed at its memory limit says so after its restart, while it runs
 * again: the OOM badge with its age and the agent's message, and the row's last exit.
 * The operator's page of the node shows the same on the instance's row.
 * The local node sandboxes (root and bubblewrap on the machine that runs the suite): its cgroup enforces the limit.
 */
test('an OOM-killed instance keeps its OOM badge and last exit while it runs again', async ({ page }) => {
  const { tenant, member } = await tenantWithDeveloper('oom')
  const api = await pwRequest.newContext({ baseURL })
  await trpc(api, 'auth.login', { email: member.email, password: member.password })
  // Its first run allocates past its 64 MiB; the restarted one (its work dir keeps the marker) serves.
  const code = `const f = process.env.HOME + '/oom-once'; if (!require('fs').existsSync(f)) { require('fs').writeFileSync(f, ''); const a = []; for (;;) a.push(Buffer.alloc(1 << 20).fill(1)) } require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT)`
  const app = await trpc<{ id: string }>(api, 'apps.create', { tenantId: tenant.id, name: 'oom-once', replicas: 1, spec: { command: 'node', args: ['-e', code], cpuMillis: 100, memoryMb: 64, restartPolicy: 'always' } })
  await api.dispose()

  await login(page, member.email, member.password)
  await page.goto(`/t/${tenant.slug}/apps/${app.id}`)
  const row = page.locator('[data-testid=instance-row][data-state=running]')
  await expect(row.getByTestId('instance-oom')).toBeVisible({ timeout: 60_000 })
  await expect(row.getByTestId('instance-oom')).toHaveText(/^OOM killed (just now|\d+[sm] ago)$/)
  await expect(row.getByTestId('instance-oom')).toHaveAttribute('title', /^out of memory: killed at its memory limit \(64 MiB\)$/)
  await expect(row.getByTestId('instance-last-exit')).toHaveAttribute('data-reason', 'oomKilled')
  await expect(row.getByTestId('instance-last-exit')).toContainText('out of memory')

  const nodeName = await row.getAttribute('data-node-name')

  // The operator's page of that node says the same.
  const ops = await operatorApi()
  const node = (await trpc<Array<{ id: string; name: string }>>(ops, 'nodes.list', undefined, 'query')).find((n) => n.name === nodeName)
  await ops.dispose()
  expect(node, `node ${nodeName}`).toBeTruthy()
  await logout(page)
  await login(page, OPERATOR.email, OPERATOR.password)
  await page.goto(`/ops/nodes/${node!.id}`)
  const nodeRow = page.locator(`[data-testid=node-instance-row][data-tenant="${tenant.slug}"][data-app=oom-once]`)
  await expect(nodeRow.getByTestId('instance-oom')).toHaveText(/^OOM killed (just now|\d+[sm] ago)$/)
  await expect(nodeRow.getByTestId('instance-last-exit')).toHaveAttribute('data-reason', 'oomKilled')
  await expect(nodeRow.getByTestId('instance-last-exit')).toContainText('out of memory')
  // Whether it serves load balancers is set here as on the nodes list (the local agent has a data plane).
  await expect(page.getByTestId('node-info').getByTestId('node-lb')).toBeVisible()
})
