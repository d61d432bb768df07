// The upload stage of a request: a multipart/form-data body, taken from the request's body
// stream as it arrives, parsed (MultipartFormReader), its fields kept and its files written to
// the upload folder (UploadFile, off the loop), with the four upload events run through the
// door in the request's coroutine: OnHTTPUploadBeforeCreatePostStream before the first part
// (false refuses with 403; an error refuses too), OnHTTPUploadReadInput per field,
// OnHTTPUploadBeforeSaveFile and OnHTTPUploadAfterSaveFile per file. Only one thing is in
// flight at a time (a body read, a file write, an event), so the socket is read no faster than
// the disk and the scripts take the body. Then the handler runs with req.form and req.files;
// the files it neither moved nor asked to keep are deleted when the request ends.
import CLua
import MoonwireCore
import NIOCore
import NIOHTTP1

extension LuaEvent {
    /// Whether the event is a stage of a request's upload.
    var isUploadStage: Bool {
        switch self {
        case .onUploadBeforeCreate, .onUploadReadInput, .onUploadBeforeSaveFile, .onUploadAfterSaveFile: true
        default: false
        }
    }
}

extension LuaVM {
    /// Starts the upload stage of a request whose multipart body streams.
    func startUpload(_ call: LuaCall, stream: RequestBodyStream) {
        guard let boundary = MultipartFormReader.boundary(ofContentType: call.request.headers.first(name: "content-type") ?? "")
        else { return refuseUpload(call, 400, "multipart/form-data without a boundary") }
        let upload = LuaUpload(reader: MultipartFormReader(boundary: boundary), stream: stream, folder: UploadPaths.absolute(uploads.dir))
        call.upload = upload
        guard events.onUploadBeforeCreate != LUA_NOREF else { return pumpUpload(call, upload) }
        startUploadEvent(call, .onUploadBeforeCreate, events.onUploadBeforeCreate) { _ in 0 }
    }

    /// Runs an upload event with `req` and what `push` adds.
    private func startUploadEvent(_ call: LuaCall, _ event: LuaEvent, _ function: Int32, _ push: (LuaThread) -> Int32) {
        call.enter(event)
        let thread = call.thread
        lua_rawgeti(thread, mw_registryindex(), lua_Integer(function))
        pushObject(.request, for: call.id, on: thread)
        proceed(call, arguments: 1 + push(thread))
    }

    /// What an upload event returned.
    func uploadStageReturned(_ call: LuaCall, results: Int32) {
        guard let upload = call.upload else { return }
        let thread = call.thread
        let first = -results
        let isFalse = results > 0 && thread.type(at: first) == LUA_TBOOLEAN && lua_toboolean(thread, first) == 0
        switch call.event {
        case .onUploadBeforeCreate:
            lua_settop(thread, 0)
            if isFalse { return refuseUpload(call, 403, "OnHTTPUploadBeforeCreatePostStream refused the upload") }
        case .onUploadBeforeSaveFile:
            guard case .file(var saved, _, _) = upload.part else { break }
            if isFalse {
                lua_settop(thread, 0)
                upload.part = .file(saved, file: nil, skipped: true)
                break
            }
            if results > 0, thread.type(at: first) == LUA_TSTRING, let chosen = thread.string(at: first) {
                lua_settop(thread, 0)
                guard let path = UploadPaths.resolve(chosen, in: upload.folder) else {
                    return refuseUpload(call, 500, "OnHTTPUploadBeforeSaveFile returned a path outside the upload folder: \(chosen)")
                }
                saved.path = path
            }
            lua_settop(thread, 0)
            return openUploadFile(call, upload, saved)
        default:
            lua_settop(thread, 0)
        }
        pumpUpload(call, upload)
    }

    /// Handles the parser's events until one has to wait (a file write, an event, the next
    /// chunk of the body); at the end of the body, runs the handler.
    func pumpUpload(_ call: LuaCall, _ upload: LuaUpload) {
        while let event = upload.pending.popFirst() {
            switch event {
            case .partBegan(let name, let filename, let contentType):
                guard let filename else {
                    guard upload.fields.count < uploads.maxFields else {
                        return refuseUpload(call, 413, "more than \(uploads.maxFields) form fields")
                    }
                    upload.part = .field(name: name, value: ByteBuffer())
                    continue
                }
                guard upload.fileCount < uploads.maxFiles else { return refuseUpload(call, 413, "more than \(uploads.maxFiles) files") }
                upload.fileCount += 1
                let saved = LuaUploadedFile(
                    field: name, filename: filename, path: UploadPaths.defaultPath(in: upload.folder, clientName: filename),
                    size: 0, contentType: contentType)
                upload.part = .file(saved, file: nil, skipped: false)
                guard events.onUploadBeforeSaveFile != LUA_NOREF else { return openUploadFile(call, upload, saved) }
                return startUploadEvent(call, .onUploadBeforeSaveFile, events.onUploadBeforeSaveFile) { T in
                    T.push(name)
                    T.push(filename)
                    return 2
                }
            case .content(var bytes):
                switch upload.part {
                case .field(let name, var value):
                    upload.fieldBytes += bytes.readableBytes
                    guard upload.fieldBytes <= settings.limits.maxBodySize else {
                        return refuseUpload(call, 413, "form fields exceed \(settings.limits.maxBodySize) bytes")
                    }
                    upload.part = .none
                    value.writeBuffer(&bytes)
                    upload.part = .field(name: name, value: value)
                case .file(var saved, let file?, false):
                    saved.size += bytes.readableBytes
                    guard saved.size <= uploads.maxFileSize else {
                        return refuseUpload(call, 413, "a file exceeds \(uploads.maxFileSize) bytes")
                    }
                    upload.part = .file(saved, file: file, skipped: false)
                    return whenUploadReady(call, upload, file.write(bytes, on: eventLoop!)) { vm, _ in vm.pumpUpload(call, upload) }
                default:
                    break
                }
            case .partEnded:
                let part = upload.part
                upload.part = .none
                switch part {
                case .field(let name, let value):
                    let text = String(buffer: value)
                    upload.fields.append((name, text))
                    guard events.onUploadReadInput != LUA_NOREF else { continue }
                    return startUploadEvent(call, .onUploadReadInput, events.onUploadReadInput) { T in
                        T.push(name)
                        T.push(value)
                        return 2
                    }
                case .file(let saved, let file?, false):
                    return whenUploadReady(call, upload, file.close(remove: false, on: eventLoop!)) { vm, _ in
                        upload.files.append(saved)
                        guard vm.events.onUploadAfterSaveFile != LUA_NOREF else { return vm.pumpUpload(call, upload) }
                        vm.startUploadEvent(call, .onUploadAfterSaveFile, vm.events.onUploadAfterSaveFile) { T in
                            T.push(saved.field)
                            T.push(saved.path)
                            lua_pushinteger(T, lua_Integer(saved.size))
                            return 3
                        }
                    }
                default:
                    continue
                }
            }
        }
        if upload.bodyEnded {
            upload.handled = true
            return runHandler(call)
        }
        readUploadBody(call, upload)
    }

    /// Takes the next chunk of the body and parses it.
    private func readUploadBody(_ call: LuaCall, _ upload: LuaUpload) {
        whenUploadReady(call, upload, upload.stream.read()) { vm, chunk in
            // A body that keeps arriving is progress: handler_timeout counts from the last chunk.
            call.lastProgress = .now()
            vm.disarmDeadline(call)
            do {
                if let chunk {
                    upload.pending.append(contentsOf: try upload.reader.feed(chunk))
                } else {
                    try upload.reader.finish()
                    upload.bodyEnded = true
                }
            } catch {
                return vm.refuseUpload(call, 400, "\(error)")
            }
            vm.pumpUpload(call, upload)
        }
    }

    /// Goes on with `next` when `future` succeeds and the request is still there; a failure
    /// (the client left, the disk refused) ends the upload.
    private func whenUploadReady<Value>(
        _ call: LuaCall, _ upload: LuaUpload, _ future: EventLoopFuture<Value>, _ next: @escaping (LuaVM, Value) -> Void
    ) {
        let id = call.id
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop!)
        let call = UnsafeTransfer(call)
        let upload = UnsafeTransfer(upload)
        let next = UnsafeTransfer(next)
        future.whenComplete { result in
            let vm = loopBound.value
            guard !upload.value.isOver, vm.calls[id] === call.value else {
                // A file that opened after the request ended is closed and deleted at once.
                if case .success(let value) = result, let file = value as? UploadFile { _ = file.close(remove: true, on: vm.eventLoop!) }
                return
            }
            switch result {
            case .success(let value):
                next.value(vm, value)
            case .failure(let error as RequestBodyStream.Failure):
                // Core answered 413 itself, or nobody is left to answer.
                vm.refuseUpload(call.value, error == .clientLeft ? 400 : 413, error == .clientLeft ? nil : "request body too large")
            case .failure(let error):
                vm.refuseUpload(call.value, 500, "cannot write an upload: \(error)")
            }
        }
    }

    /// Ends an upload early: answers `status` (with a log line when there is a message),
    /// deleting what it wrote.
    func refuseUpload(_ call: LuaCall, _ status: Int, _ message: String?) {
        if let message {
            logger.warning("upload refused", metadata: ["path": "\(call.request.path)", "status": "\(status)", "error": "\(message)"])
        }
        call.status = status
        call.headers = HTTPHeaders()
        call.body.clear()
        call.body.writeString(HTTPResponse.statusText(status))
        call.answered = true
        answer(call, stopped: true)
    }

    /// The request ends: files it wrote that nobody kept are deleted (a moved file is no
    /// longer at its path), and a file still open is closed.
    func finishUpload(_ call: LuaCall) {
        guard let upload = call.upload else { return }
        upload.isOver = true
        if let file = upload.openFile { _ = file.close(remove: true, on: eventLoop!) }
        // With keep, the files of a request that reached its handler stay; a refused or
        // broken upload leaves nothing.
        let kept = uploads.keep && upload.handled ? Set(upload.files.map(\.path)) : []
        UploadFile.remove(upload.written.filter { !kept.contains($0) })
    }

    private func openUploadFile(_ call: LuaCall, _ upload: LuaUpload, _ saved: LuaUploadedFile) {
        let opening = UploadFile.create(saved.path, on: eventLoop!)
        whenUploadReady(call, upload, opening) { vm, file in
            upload.written.append(file.path)
            upload.part = .file(saved, file: file, skipped: false)
            vm.pumpUpload(call, upload)
        }
    }
}
