/** The Netlify stand-in lives in testing/ (the benchmark uses it too); tests import it from here. */
export * from '../../../testing/netlify-standin.js';
