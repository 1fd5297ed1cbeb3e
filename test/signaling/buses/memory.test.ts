import { createMemoryBus } from '../../../src/signaling/buses/memory.js';
import { runBusContract } from './bus-contract.js';

runBusContract('memory bus', async (logger) => createMemoryBus({ logger }));
