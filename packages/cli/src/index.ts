// The CLI is a program (bin/alveary.mjs → main.ts); these are the parts tests use.
export { planApply, describePlan, ZApplyFile } from './apply/plan'
export type { Plan, Change } from './apply/plan'
export { EXIT } from './errors'
