/** Which TCP ports something on this node already listens on (so one bad port cannot stop every load balancer). */
import net from 'node:net'

export async function portsInUse(ports: readonly number[]): Promise<Set<number>> {
  const busy = new Set<number>()
  await Promise.all(
    [...new Set(ports)].map(
      (port) =>
        new Promise<void>((resolve) => {
          const srv = net.createServer()
          srv.once('error', () => {
            busy.add(port)
            resolve()
          })
          srv.listen({ port, host: '0.0.0.0', exclusive: true }, () => srv.close(() => resolve()))
        }),
    ),
  )
  return busy
}
