/** A registry store on its own state database (the write lock), closed when the `using` scope ends. */
import { StateDb, statePathFor } from '../../src/core/state.ts'
import { RegistryStore } from '../../src/core/store.ts'

export type OpenStore = RegistryStore & { state: StateDb; [Symbol.dispose](): void }

/** What a fresh process gets: a new store and a new database connection on `registryPath`. */
export function openStore(registryPath: string, options: { lockTimeout?: number } = {}): OpenStore {
	const state = new StateDb(statePathFor(registryPath), options)
	const store = new RegistryStore(registryPath, state)
	return Object.assign(store, { state, [Symbol.dispose]: () => state.close() })
}
