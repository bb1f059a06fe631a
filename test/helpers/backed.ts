/**
 * Registries whose models point at a running backend (the Python suite's `backend_registry`), and deps
 * over them with the settings a test needs (image roots, timeouts, window).
 */
import { join } from 'node:path'
import { type Deps, openDeps } from '../../src/core/service.ts'
import { type Settings, readSettings } from '../../src/core/settings.ts'
import { entry, type EntryOptions, writeRegistry } from './registry.ts'

/** A registry at `path` whose entries (name -> served model id) all point at `endpoint`. */
export function backendRegistry(path: string, endpoint: string, models: Record<string, string>, extra: EntryOptions = {}): string {
	return writeRegistry(
		path,
		Object.entries(models).map(([name, servedModelId]) => entry(name, { backend: 'llamacpp', baseUrl: endpoint, servedModelId, ...extra }))
	)
}

/** Deps over `registryPath` with `overrides` (image roots, timeouts, window); closed with the scope. */
export function backedDeps(registryPath: string, overrides: Partial<Settings> = {}): Deps & { [Symbol.dispose](): void } {
	const deps = openDeps(readSettings({}, { registryPath, ...overrides }, join(registryPath, '..')))
	return Object.assign(deps, { [Symbol.dispose]: () => deps.state.close() })
}
