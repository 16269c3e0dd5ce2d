// Launcher of mongo-java-server (de.bwaldvogel:mongo-java-server) for devservices/services.sh:
// a MongoDB wire-protocol server for development and tests.
//
// Usage: java -cp <classpath> MongoServerMain HOST PORT [DATA_FILE]
//
// With DATA_FILE: the H2 MVStore backend (mongo-java-server-h2-backend) keeps every database in
// that file, so a stop and a start keep the data. MVStore commits in the background about once a
// second; SIGTERM (services.sh stop) commits, closes the store and compacts the file to its live
// data. A killed process restarts at the last complete commit: it loses up to its last second of
// writes, and a document updated after that commit may keep some later updates (updates change
// the stored document object in place). Two servers cannot open one file (MVStore locks it).
// Without DATA_FILE: the in-memory backend; every start is an empty server.
//
// Prints one "mongo-java-server ... listening on HOST:PORT" line once bound.

import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import java.util.List;
import org.h2.mvstore.MVStore;
import org.h2.mvstore.MVStoreTool;

public final class MongoServerMain {

    /**
     * The server version reported by {@code isMaster} and {@code buildInfo}.
     *
     * <p>Why this shim exists: mongo-java-server 1.47.0's newest built-in version
     * ({@code ServerVersion.MONGO_5_0}, also the default) reports maxWireVersion 8, and pymongo
     * 4.20 refuses such servers ("reports wire version 8, but this version of PyMongo requires at
     * least 9"). In 1.47.0 the version is only echoed in those two replies; it switches no
     * behaviour on or off. So we report MongoDB 5.0.0 with its real wire version, 13, which is
     * also the feature level the server models.
     */
    private enum ReportedVersion implements MongoVersion {
        MONGO_5_0_WIRE_13;

        @Override
        public List<Integer> getVersionArray() {
            return List.of(5, 0, 0);
        }

        @Override
        public int getWireVersion() {
            return 13;
        }
    }

    /**
     * H2Backend whose close also compacts the file. MVStore only appends and frees old chunks
     * after its 45 s retention time, so a file that saw many writes (tests create and drop
     * databases all the time) can be tens of MB larger than its data while the server runs. A
     * full compaction at close rewrites the live data into a new file and renames it over the old
     * one (a whole stop took 0.65 s here with 9 MB of live data; an interrupted compaction leaves
     * the old file).
     */
    private static final class CompactingH2Backend extends H2Backend {
        CompactingH2Backend(MVStore store) {
            super(store);
        }

        @Override
        public void close() {
            getMvStore().close(-1); // commit, close, full compaction
            super.close(); // forgets the databases; the store is already closed
        }
    }

    private MongoServerMain() {}

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 2 && args.length != 3) {
            System.err.println("usage: MongoServerMain HOST PORT [DATA_FILE]");
            System.exit(2);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        String dataFile = args.length == 3 ? args[2] : null;

        MongoBackend backend;
        String storage;
        if (dataFile == null) {
            backend = new MemoryBackend();
            storage = "in memory";
        } else {
            MVStore store;
            try {
                MVStoreTool.compactCleanUp(dataFile); // leftovers of an interrupted compaction
                // Defaults of MVStore.open(file): background commit every 1000 ms.
                store = new MVStore.Builder().fileName(dataFile).open();
            } catch (RuntimeException e) { // MVStoreException: locked by another server, corrupt
                System.err.println("mongo-java-server: cannot open the data file " + dataFile
                        + ": " + e + "\n(Is another server using it? 'services.sh reset' deletes it.)");
                System.exit(1);
                return;
            }
            backend = new CompactingH2Backend(store);
            storage = "H2 MVStore " + dataFile;
        }

        MongoServer server = new MongoServer(backend.version(ReportedVersion.MONGO_5_0_WIRE_13));
        // SIGTERM (services.sh stop) runs this: close client connections and the listener, wait
        // for the running commands, then close the backend (for H2: final commit, file closed).
        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow, "mongo-shutdown"));
        try {
            server.bind(host, port);
        } catch (Exception e) { // e.g. java.net.BindException, thrown unchecked by netty
            // Exit explicitly: netty's non-daemon threads would otherwise keep the JVM alive.
            System.err.println(
                    "mongo-java-server: cannot listen on " + host + ":" + port + ": " + e);
            System.exit(1);
        }
        System.out.println("mongo-java-server (" + storage + ", reports MongoDB 5.0.0 / wire 13)"
                + " listening on " + host + ":" + port);
        System.out.flush();
        // Serve until the JVM is told to stop (SIGTERM/SIGINT run the hook above).
        Thread.currentThread().join();
    }
}
