// trpc-to-openapi's type declarations import Next.js for its Next adapter (unused here);
// Next's own declarations would add Next's globals (a required process.env.NODE_ENV) to this
// program. This stub stands in for them in the BFF's typecheck only (tsconfig paths).
import type { IncomingMessage, ServerResponse } from 'node:http'
export type NextApiRequest = IncomingMessage
export type NextApiResponse = ServerResponse
