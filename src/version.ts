/**
 * @module
 * The version and the git commit the binary was built from, set by `scripts/build.ts` with `--define`.
 * Running from source (tests, `bun src/main.ts`) they fall back to package.json's version and "source".
 */
import pkg from '../package.json' with { type: 'json' }

declare const BUILD_VERSION: string | undefined
declare const BUILD_COMMIT: string | undefined

export const VERSION: string = typeof BUILD_VERSION === 'string' ? BUILD_VERSION : pkg.version
export const COMMIT: string = typeof BUILD_COMMIT === 'string' ? BUILD_COMMIT : 'source'
