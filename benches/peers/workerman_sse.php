<?php
// The seed's SSE example (shared/seed), unchanged but for the port and the process count, run on
// Workerman from a source tree given by WORKERMAN_SRC (its src/ folder).
use Workerman\Worker;
use Workerman\Connection\TcpConnection;
use Workerman\Protocols\Http\Request;
use Workerman\Protocols\Http\ServerSentEvents;
use Workerman\Protocols\Http\Response;
use Workerman\Timer;

spl_autoload_register(function ($class) {
    $prefix = 'Workerman\\';
    if (strncmp($class, $prefix, strlen($prefix)) === 0) {
        $file = getenv('WORKERMAN_SRC') . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});

$worker = new Worker('http://127.0.0.1:' . (getenv('PORT') ?: 8080));
$worker->count = (int)(getenv('COUNT') ?: 1);
$worker->reusePort = true;

$worker->onMessage = function(TcpConnection $connection, Request $request)
{
    if ($request->header('accept') === 'text/event-stream') {
        $connection->send(new Response(200, ['Content-Type' => 'text/event-stream'], "\r\n"));
        $timer_id = Timer::add(2, function () use ($connection, &$timer_id){
            if ($connection->getStatus() !== TcpConnection::STATUS_ESTABLISHED) {
                Timer::del($timer_id);
                return;
            }
            $connection->send(new ServerSentEvents(['event' => 'message', 'data' => 'hello', 'id'=>1]));
        });
        return;
    }
    $connection->send('ok');
};

Worker::runAll();
