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
// Both backends look up `_id` first (IdLookup below): a query with `_id: value` or
// `_id: {$in: [values]}` plus other keys reads only the documents the `_id` index finds, where
// mongo-java-server itself scans the collection. This is done by subclassing the public backend,
// database and collection classes (their constructors are public and `queryDocuments` is
// protected), so no class of ours lives in the library's packages.
//
// Prints one "mongo-java-server ... listening on HOST:PORT" line once bound.

import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.QueryResult;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.h2.H2Collection;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.ObjectId;
import java.time.Instant;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import org.h2.mvstore.MVMap;
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
     * The {@code _id} lookup. mongo-java-server 1.47.0 uses an index only when a query's keys are
     * exactly the index's ({@code AbstractUniqueIndex.canHandle}); any other query scans the
     * whole collection. So every guarded write of the service ({@code {_id: x, lease_owner: "me",
     * sequence: 3}}) and every {@code find({_id: {$in: [...]}, ...})} read all the tasks: about
     * 1.6-3.4 ms per update with 10,000 of them on H2, growing with the collection.
     *
     * <p>The top-level keys of a query are all ANDed, so a document matching the query matches
     * its {@code _id} part: looking that part up in the {@code _id} index and matching the whole
     * query against just those documents gives what the scan gives. Only plain values are looked
     * up: the index keys them by the same normalised equality the matcher uses
     * ({@code Utils.normalizeValue}: 1, 1L and 1.0 are one key, "1" and true others). null (which
     * also matches a missing field), regexes, sub-documents, arrays and other operators keep
     * scanning. The candidates are put in the scan's order, so a command that takes the first
     * match (update_one, find_one_and_update, delete_one) takes the document the scan would.
     */
    private static final class IdLookup {
        private IdLookup() {}

        /** The candidates' positions in scan order, or null: leave the query to the library. */
        static <P> Iterable<P> candidates(List<Index<P>> indexes, Document query, Document orderBy,
                Comparator<? super P> scanOrder) {
            Collection<?> ids = plainIds(query.get("_id"));
            // {_id: ...} alone already uses the index; a $natural order is positional.
            if (ids == null || query.size() < 2
                    || (orderBy != null && orderBy.containsKey("$natural"))) {
                return null;
            }
            for (Index<P> index : indexes) {
                if (index.getName().equals("_id_")) { // the primary key index's fixed name
                    Set<P> positions = new TreeSet<>(scanOrder);
                    for (Object id : ids) {
                        index.getPositions(new Document("_id", id)).forEach(positions::add);
                    }
                    return positions;
                }
            }
            return null; // a collection without _id (system.indexes)
        }

        /** The values an {@code _id} condition asks for, if all are plain; else null. */
        private static Collection<?> plainIds(Object condition) {
            if (isPlain(condition)) {
                return List.of(condition);
            }
            if (condition instanceof Document
                    && ((Document) condition).keySet().equals(Set.of("$in"))
                    && ((Document) condition).get("$in") instanceof Collection) {
                Collection<?> values = (Collection<?>) ((Document) condition).get("$in");
                return values.stream().allMatch(IdLookup::isPlain) ? values : null;
            }
            return null;
        }

        private static boolean isPlain(Object value) {
            return value instanceof String || value instanceof Number || value instanceof Boolean
                    || value instanceof ObjectId || value instanceof Instant
                    || value instanceof UUID;
        }
    }

    /** MemoryCollection with the {@code _id} lookup; a scan reads positions in ascending order. */
    private static final class IdLookupMemoryCollection extends MemoryCollection {
        IdLookupMemoryCollection(MongoDatabase database, String name, CollectionOptions options,
                CursorRegistry cursors) {
            super(database, name, options, cursors);
        }

        @Override
        protected QueryResult queryDocuments(Document query, Document orderBy, int skip, int limit,
                int batchSize, Document projection) {
            Iterable<Integer> candidates =
                    IdLookup.candidates(getIndexes(), query, orderBy, Comparator.naturalOrder());
            if (candidates == null) {
                return super.queryDocuments(query, orderBy, skip, limit, batchSize, projection);
            }
            return matchDocuments(query, candidates, orderBy, skip, limit, batchSize, projection);
        }
    }

    /** H2Collection with the {@code _id} lookup; a scan reads the data map in its key order. */
    private static final class IdLookupH2Collection extends H2Collection {
        private final Comparator<Object> scanOrder;

        IdLookupH2Collection(MongoDatabase database, String name, CollectionOptions options,
                MVMap<Object, Document> dataMap, MVMap<String, Object> metaMap,
                CursorRegistry cursors) {
            super(database, name, options, dataMap, metaMap, cursors);
            this.scanOrder = dataMap.getKeyType()::compare;
        }

        @Override
        protected QueryResult queryDocuments(Document query, Document orderBy, int skip, int limit,
                int batchSize, Document projection) {
            Iterable<Object> candidates =
                    IdLookup.candidates(getIndexes(), query, orderBy, scanOrder);
            if (candidates == null) {
                return super.queryDocuments(query, orderBy, skip, limit, batchSize, projection);
            }
            return matchDocuments(query, candidates, orderBy, skip, limit, batchSize, projection);
        }
    }

    /** MemoryBackend whose collections do the {@code _id} lookup. */
    private static final class DevMemoryBackend extends MemoryBackend {
        @Override
        public MemoryDatabase openOrCreateDatabase(String databaseName) {
            return new MemoryDatabase(databaseName, getCursorRegistry()) {
                @Override
                protected MemoryCollection openOrCreateCollection(String name,
                        CollectionOptions options) {
                    return new IdLookupMemoryCollection(this, name, options, cursorRegistry);
                }
            };
        }
    }

    /**
     * H2Backend whose collections do the {@code _id} lookup and whose close also compacts the
     * file. MVStore only appends and frees old chunks after its 45 s retention time, so a file
     * that saw many writes (tests create and drop databases all the time) can be tens of MB
     * larger than its data while the server runs. A full compaction at close rewrites the live
     * data into a new file and renames it over the old one (a whole stop took 0.65 s here with
     * 9 MB of live data; an interrupted compaction leaves the old file).
     */
    private static final class DevH2Backend extends H2Backend {
        DevH2Backend(MVStore store) {
            super(store);
        }

        @Override
        protected MongoDatabase openOrCreateDatabase(String databaseName) {
            return new H2Database(databaseName, getMvStore(), getCursorRegistry()) {
                // H2Database's constructor calls this for the collections already in the file,
                // before a field of this class could be set; so the store comes from the
                // enclosing backend (javac sets the enclosing instance before calling super()).
                @Override
                protected MongoCollection<Object> openOrCreateCollection(String name,
                        CollectionOptions options) {
                    // The maps H2Database.openOrCreateCollection opens: the file's own names.
                    MVStore store = DevH2Backend.this.getMvStore();
                    String fullName = getFullCollectionNamespace(name);
                    return new IdLookupH2Collection(this, name, options,
                            store.openMap("databases." + fullName),
                            store.openMap("meta." + fullName), cursorRegistry);
                }
            };
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
            backend = new DevMemoryBackend();
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
            backend = new DevH2Backend(store);
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
