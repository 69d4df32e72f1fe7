import { startBff } from './bff'
import { readEnv } from './config'

// `npm start -w @alveary/bff`: the BFF alone (production: DATABASE_URL set, several replicas).
try {
  const bff = await startBff(readEnv())
  if (bff.operator.password) console.log(`operator account created: ${bff.operator.email} / ${bff.operator.password} (shown once)`)
  const stop = async () => {
    await bff.stop()
    process.exit(0)
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
} catch (err) {
  console.error(`alveary-bff: ${(err as Error).message}`)
  process.exit(1)
}
