// rate-limiter-flexible documents importing its classes by path ("import directly") and
// extending RateLimiterStoreAbstract for a new store, but its index neither exports that class
// at run time nor declares the path: this gives the path the type the index declares.
declare module 'rate-limiter-flexible/lib/RateLimiterStoreAbstract.js' {
  import type { RateLimiterStoreAbstract } from 'rate-limiter-flexible';
  const StoreAbstract: typeof RateLimiterStoreAbstract;
  export default StoreAbstract;
}
