export * from './app'
export * from './tenant'
