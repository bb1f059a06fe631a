/** Where the project and its binary are. */
import { join, resolve } from 'node:path'

export const ROOT = resolve(import.meta.dir, '..', '..')
export const BINARY = join(ROOT, 'dist', 'imageworks-loader')
export const EXAMPLE_REGISTRY = join(ROOT, 'configs', 'model_registry.json')
