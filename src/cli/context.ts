/**
 * @module
 * What every command gets: where to write, and the registry named by `--registry` or
 * IMAGEWORKS_REGISTRY (opened on first use, so `--help` never touches it).
 */
import { type Deps, openDeps } from '../core/service.ts'
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

	/** The store and state database of the registry in use. */
	deps(options: GlobalOptions): Deps {
		this.#deps ??= openDeps(this.settings(options))
		return this.#deps
	}
}
