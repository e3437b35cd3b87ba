/** The project folder (core/package-root.ts), for the commands that read files shipped with it. */
export { packageRoot } from '../core/package-root.ts';
