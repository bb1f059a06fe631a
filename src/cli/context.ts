/**
 * @module
 * What every command gets: where to write, and the registry named by `--registry` or
 * IMAGEWORKS_REGISTRY (opened on first use, so `--help` never touches it).
 */
import type { Deps } from '../core/service.ts'
import { type Settings, readSettings } from '../core/settings.ts'
import { Output, type Io } from './output.ts'

/** Options every command accepts. */
export interface GlobalOptions {
	registry?: string
	json?: boolean
}

export class CommandContext {
	readonly out: Output
	#deps: Deps | undefined

	constructor(readonly io: Io) {
		this.out = new Output(io)
	}

	/** Settings from the environment, with `--registry` winning. @throws {InvalidSetting} */
	settings(options: GlobalOptions): Settings {
		return readSettings(this.io.env, { registryPath: options.registry || undefined })
	}

	/**
	 * The store and state database of the registry in use. The core is imported here, on first use, so
	 * `--help` and usage errors never load it (with --splitting it is a separate chunk of the binary).
	 */
	async deps(options: GlobalOptions): Promise<Deps> {
		if (!this.#deps) {
			const settings = this.settings(options)
			const { openDeps } = await import('../core/service.ts')
			this.#deps = openDeps(settings)
		}
		return this.#deps
	}
}
