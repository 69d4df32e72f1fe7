export * from './app'
export * from './tenant'
export * from './load-balancer'
export * from './bounds'
